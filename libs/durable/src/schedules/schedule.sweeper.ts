import {
  BeforeApplicationShutdown,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  Optional,
} from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import type { EntityManager } from 'typeorm';
import { DEFAULT_VERSION, SCHEDULES_INTERVAL_NAME } from '../durable.constants';
import { messages } from '../durable.messages';
import { DurableOptionsHolder } from '../durable.options';
import { DurableDatabase } from '../persistence/durable.database';
import { DurableStore } from '../persistence/durable.store';
import { decodeJson, encodeJson } from '../persistence/json-codec';
import { isFinished, RunStatus } from '../interfaces';
import { WorkflowRegistry } from '../workflow.registry';
import { cronOf } from './schedule-definition';
import { atOrAfter, MAX_TICKS_PER_SWEEP, planTicks } from './schedule-plan';
import { ScheduleRegistry } from './schedule.registry';
import { DueSchedule, ScheduleStore } from './schedule.store';

/** Schedules locked per sweep transaction. */
const SCHEDULES_PER_SWEEP = 20;
/** Ticks a schedule with overlap 'queue' keeps waiting; later ones are skipped (and logged). */
export const MAX_DEFERRED_TICKS = 100;

/** The id of the run a schedule starts for a tick: the same on every replica, so a tick fires once. */
export function scheduledRunId(schedule: string, tick: Date): string {
  return `schedule:${schedule}:${tick.toISOString()}`;
}

/**
 * Turns due cron ticks into runs, on every replica that serves the schedule's workflow: each due
 * schedule row is locked (SKIP LOCKED) while its ticks are inserted as runs with ids derived from the
 * tick, and its next tick is advanced in the same transaction, so a tick fires exactly once however many
 * replicas sweep. Sweeps run every pollIntervalMs (registered in SchedulerRegistry) and at the next tick.
 */
@Injectable()
export class ScheduleSweeper implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('Durable');
  private readonly intervalName: string;
  private workflows: string[] = [];
  private timer?: NodeJS.Timeout;
  private sweeping?: Promise<void>;
  private again = false;
  private running = false;

  constructor(
    private readonly store: ScheduleStore,
    private readonly runs: DurableStore,
    private readonly db: DurableDatabase,
    private readonly registry: WorkflowRegistry,
    private readonly declared: ScheduleRegistry,
    private readonly options: DurableOptionsHolder,
    @Optional() private readonly schedulerRegistry?: SchedulerRegistry,
  ) {
    this.intervalName = `${SCHEDULES_INTERVAL_NAME}:${options.value.schema}`;
  }

  async onApplicationBootstrap(): Promise<void> {
    if (!this.options.value.worker || this.registry.size === 0 || !this.schedulerRegistry) return;
    this.workflows = [...new Set(this.registry.served().workflows)];
    await this.store.syncDeclared(this.declared.definitions(), this.workflows);
    this.running = true;
    this.schedulerRegistry.addInterval(
      this.intervalName,
      setInterval(() => void this.sweep(), this.options.value.pollIntervalMs),
    );
    await this.sweep();
  }

  async beforeApplicationShutdown(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    if (this.schedulerRegistry?.doesExist('interval', this.intervalName))
      this.schedulerRegistry.deleteInterval(this.intervalName);
    clearTimeout(this.timer);
    await this.sweeping;
  }

  /** Fires what is due now (also called after a schedule is created or resumed in this process). */
  sweep(): Promise<void> {
    if (!this.running) return Promise.resolve();
    if (this.sweeping) {
      this.again = true;
      return this.sweeping;
    }
    this.sweeping = this.sweepUntilIdle()
      .catch((error: Error) => this.logger.warn(`Schedule sweep failed: ${error.message}`))
      .finally(() => (this.sweeping = undefined));
    return this.sweeping;
  }

  private async sweepUntilIdle(): Promise<void> {
    let fired = false;
    for (;;) {
      this.again = false;
      const { due, waitMs } = await this.store.probe(this.workflows);
      // Once per round: what stays due after firing is locked by another replica or waits for a run.
      if (due && !fired) {
        fired = !(await this.db.transaction((manager) => this.fireDue(manager)));
        continue;
      }
      this.armTimer(waitMs);
      if (!this.again || !this.running) return;
      fired = false;
    }
  }

  /** Wakes this process at the next tick when that comes before the next poll. */
  private armTimer(waitMs: number | null): void {
    clearTimeout(this.timer);
    if (waitMs === null || waitMs <= 0 || waitMs >= this.options.value.pollIntervalMs || !this.running)
      return;
    this.timer = setTimeout(() => void this.sweep(), waitMs + 5);
    this.timer.unref();
  }

  /** One transaction: lock due schedules, insert their runs, advance them. True when more may be due. */
  private async fireDue(manager: EntityManager): Promise<boolean> {
    const due = await this.store.lockDue(manager, this.workflows, SCHEDULES_PER_SWEEP);
    let more = due.length === SCHEDULES_PER_SWEEP;
    for (const schedule of due) {
      if (await this.fire(manager, schedule)) more = true;
    }
    return more;
  }

  /** Handles one locked schedule; true when it had more ticks than one sweep fires. */
  private async fire(manager: EntityManager, schedule: DueSchedule): Promise<boolean> {
    const cron = cronOf(schedule);
    const now = schedule.db_now;
    const from = schedule.next_tick_at ?? atOrAfter(cron, schedule.active_since);
    const plan =
      from && from <= now
        ? planTicks(cron, from, now, schedule.catch_up, Number(schedule.missed_after_ms))
        : { fire: [], dropped: null, next: from };
    if (plan.dropped) {
      this.logger.warn(
        messages.scheduleTicksMissed(schedule.name, plan.dropped.from, plan.dropped.until, schedule.catch_up),
      );
    }
    let busy = schedule.last_run_status !== null && !isFinished(schedule.last_run_status as RunStatus);
    let lastRunId = schedule.last_run_id;
    const deferred: Date[] = [];
    const ticks = schedule.overlap === 'queue' ? [...schedule.deferred, ...plan.fire] : plan.fire;
    for (const tick of ticks) {
      if (!busy || schedule.overlap === 'allow') {
        lastRunId = await this.startRun(manager, schedule, tick);
        busy = true;
      } else if (schedule.overlap === 'queue' && deferred.length < MAX_DEFERRED_TICKS) {
        deferred.push(tick);
      } else if (schedule.overlap === 'queue') {
        this.logger.warn(messages.scheduleQueueFull(schedule.name, MAX_DEFERRED_TICKS));
      }
    }
    await this.store.advance(manager, schedule.name, { nextTickAt: plan.next, lastRunId, deferred });
    return plan.fire.length === MAX_TICKS_PER_SWEEP;
  }

  private async startRun(manager: EntityManager, schedule: DueSchedule, tick: Date): Promise<string> {
    const id = scheduledRunId(schedule.name, tick);
    const registered = this.registry.latest(schedule.workflow);
    const args = decodeJson(schedule.args) as unknown[];
    await this.runs.insertPendingRun(
      {
        id,
        workflow: schedule.workflow,
        version: registered?.version ?? DEFAULT_VERSION,
        input: encodeJson([tick, ...args], `Input of schedule "${schedule.name}"`, Infinity),
        timeoutMs: registered?.timeoutMs,
      },
      manager,
    );
    return id;
  }
}
