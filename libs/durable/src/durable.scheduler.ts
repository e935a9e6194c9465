import {
  BeforeApplicationShutdown,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  Optional,
} from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { TransactionContext } from './context';
import { HEARTBEAT_INTERVAL_NAME, RATE_PACE_INTERVAL_NAME, SWEEP_INTERVAL_NAME } from './durable.constants';
import { DurableOptionsHolder } from './durable.options';
import { DurableWorker } from './durable.worker';
import { DurableEvents } from './engine/durable.events';
import { DurableClock } from './engine/durable.clock';
import { InvalidOptionsError } from './errors';
import { DoneNotifier } from './persistence/done-notifier';
import { DurableStore } from './persistence/durable.store';
import { NotificationListener } from './persistence/notification.listener';
import { WorkflowRegistry } from './workflow.registry';

const UNSERVED_REPORT_EVERY = 30;

/**
 * Lifecycle of the engine in this process: at bootstrap, heartbeat, recover this executor's and dead
 * executors' runs and start claiming; periodically, heartbeat and sweep (registered in @nestjs/schedule's
 * SchedulerRegistry); before shutdown, stop claiming, drain and release leases.
 */
@Injectable()
export class DurableScheduler implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('Durable');
  private readonly reported = new Set<string>();
  private readonly heartbeatName: string;
  private readonly sweepName: string;
  private readonly paceName: string;
  private sweeps = 0;
  private sweeping = false;
  private started = false;

  constructor(
    private readonly store: DurableStore,
    private readonly worker: DurableWorker,
    private readonly listener: NotificationListener,
    private readonly registry: WorkflowRegistry,
    private readonly options: DurableOptionsHolder,
    private readonly transactions: TransactionContext,
    private readonly events: DurableEvents,
    private readonly clock: DurableClock,
    private readonly done: DoneNotifier,
    @Optional() private readonly schedulerRegistry?: SchedulerRegistry,
  ) {
    if (!schedulerRegistry) {
      throw new InvalidOptionsError(
        'DurableModule needs @nestjs/schedule: add ScheduleModule.forRoot() to the imports of your root module.',
      );
    }
    this.heartbeatName = `${HEARTBEAT_INTERVAL_NAME}:${options.value.schema}`;
    this.sweepName = `${SWEEP_INTERVAL_NAME}:${options.value.schema}`;
    this.paceName = `${RATE_PACE_INTERVAL_NAME}:${options.value.schema}`;
  }

  async onApplicationBootstrap(): Promise<void> {
    const { worker, executorId, recoverOnStartup, leaseMs, heartbeatMs, pollIntervalMs } = this.options.value;
    this.transactions.settle();
    await this.listener.start();
    this.started = true;
    if (!worker) return;
    // A new life of this executor id: runs it claimed before now are orphans (see releaseOrphanedRuns).
    this.clock.observe(await this.store.heartbeat(executorId, true));
    if (recoverOnStartup) {
      const count = await this.store.releaseOrphanedRuns(leaseMs);
      if (count > 0) this.events.emit({ type: 'runs.recovered', count, trigger: 'startup' });
    }
    this.worker.start();
    this.schedulerRegistry!.addInterval(
      this.heartbeatName,
      setInterval(() => void this.heartbeat(), heartbeatMs),
    );
    this.schedulerRegistry!.addInterval(
      this.sweepName,
      setInterval(() => void this.sweep(), pollIntervalMs),
    );
    const paceMs = this.worker.paceMs;
    if (paceMs !== null)
      this.schedulerRegistry!.addInterval(
        this.paceName,
        setInterval(() => this.worker.pace(), paceMs),
      );
    await this.worker.poke();
  }

  async beforeApplicationShutdown(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    for (const name of [this.heartbeatName, this.sweepName, this.paceName]) {
      if (this.schedulerRegistry!.doesExist('interval', name)) this.schedulerRegistry!.deleteInterval(name);
    }
    if (this.options.value.worker) await this.worker.stop(this.options.value.shutdownTimeoutMs);
    await this.done.drain();
    await this.listener.stop();
  }

  private async heartbeat(): Promise<void> {
    try {
      this.clock.observe(await this.store.heartbeat(this.options.value.executorId));
    } catch (error) {
      this.logger.warn(`Heartbeat failed: ${(error as Error).message}`);
    }
  }

  /**
   * Returns dead executors' runs to the queue, and this executor's own runs that nothing here executes,
   * claims what is due, and reports runs nobody serves.
   */
  private async sweep(): Promise<void> {
    if (this.sweeping) return;
    this.sweeping = true;
    try {
      const count = await this.store.releaseOrphanedRuns(this.options.value.leaseMs);
      if (count > 0) this.events.emit({ type: 'runs.recovered', count, trigger: 'sweep' });
      await this.worker.releaseStranded();
      await this.worker.poke();
      if (this.sweeps++ % UNSERVED_REPORT_EVERY === 0) await this.reportUnserved();
    } catch (error) {
      this.logger.warn(`Sweep failed: ${(error as Error).message}`);
    } finally {
      this.sweeping = false;
    }
  }

  private async reportUnserved(): Promise<void> {
    const runs = await this.store.findUnservedRuns(this.options.value.leaseMs, this.registry.served(), 20);
    for (const run of runs) {
      if (this.reported.has(run.id)) continue;
      this.reported.add(run.id);
      this.events.emit({ type: 'run.unserved', runId: run.id, workflow: run.workflow, version: run.version });
    }
  }
}
