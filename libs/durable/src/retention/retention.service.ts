import {
  BeforeApplicationShutdown,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  Optional,
} from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { messages } from '../durable.messages';
import { DurableOptionsHolder } from '../durable.options';
import { RetentionStore, type PurgeCutoff } from './retention.store';
import type { FinishedStatus } from './retention.options';

const RETENTION_INTERVAL_NAME = 'durable:retention';
/** The first pass waits this long after startup (or the interval, if shorter): recovery goes first. */
const FIRST_PASS_DELAY_MS = 10_000;
/** Pause between two batches, so the hot queries always get their turn. */
const BATCH_PAUSE_MS = 10;

/** What one purge deleted. */
export interface PurgeResult {
  /** Runs deleted (with their steps and signals). */
  runs: number;
  /** Delete statements sent (each deleting at most the batch size). */
  batches: number;
}

/**
 * Applies the `retention` option: every interval, one replica (the holder of an advisory lock) deletes
 * the finished runs older than their status's age and the executor rows long silent, in bounded
 * batches. Also the engine of DurableClient.purge.
 */
@Injectable()
export class RetentionService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('Durable');
  private readonly name: string;
  private stopped = false;
  private passing?: Promise<unknown>;

  constructor(
    private readonly store: RetentionStore,
    private readonly options: DurableOptionsHolder,
    @Optional() private readonly schedulerRegistry?: SchedulerRegistry,
  ) {
    this.name = `${RETENTION_INTERVAL_NAME}:${options.value.schema}`;
  }

  onApplicationBootstrap(): void {
    const retention = this.options.value.retention;
    if (!retention || !this.schedulerRegistry) return;
    const tick = () => {
      if (!this.passing) this.passing = this.runPass().finally(() => (this.passing = undefined));
    };
    this.schedulerRegistry.addTimeout(
      this.name,
      setTimeout(tick, Math.min(retention.intervalMs, FIRST_PASS_DELAY_MS)),
    );
    this.schedulerRegistry.addInterval(this.name, setInterval(tick, retention.intervalMs));
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.stopped = true;
    if (this.schedulerRegistry?.doesExist('timeout', this.name))
      this.schedulerRegistry.deleteTimeout(this.name);
    if (this.schedulerRegistry?.doesExist('interval', this.name))
      this.schedulerRegistry.deleteInterval(this.name);
    await this.passing;
  }

  /**
   * One retention pass under the advisory lock; undefined when another replica holds it. Never throws:
   * a failed pass is logged and the next interval tries again.
   */
  async runPass(): Promise<{ runs: number; executors: number } | undefined> {
    const retention = this.options.value.retention;
    if (!retention) return undefined;
    const started = Date.now();
    try {
      const result = await this.store.withRetentionLock(this.options.value.schema, async () => {
        let runs = 0;
        for (const [status, ageMs] of Object.entries(retention.ages) as [FinishedStatus, number][]) {
          runs += (await this.purge([status], { ageMs }, retention.batchSize)).runs;
        }
        let executors = 0;
        for (let n = retention.batchSize; n === retention.batchSize && !this.stopped;) {
          n = await this.store.purgeExecutors(retention.executorsMs, retention.batchSize);
          executors += n;
        }
        return { runs, executors };
      });
      if (result && result.runs + result.executors > 0)
        this.logger.log(messages.retentionPurged(result.runs, result.executors, Date.now() - started));
      return result;
    } catch (error) {
      this.logger.warn(messages.retentionFailed((error as Error)?.message ?? String(error)));
      return undefined;
    }
  }

  /** Deletes finished runs of `statuses` before the cutoff, batch after batch until none is left. */
  async purge(
    statuses: readonly FinishedStatus[],
    cutoff: PurgeCutoff,
    batchSize: number,
  ): Promise<PurgeResult> {
    const result: PurgeResult = { runs: 0, batches: 0 };
    for (const status of statuses) {
      for (;;) {
        const deleted = await this.store.purgeBatch(status, cutoff, batchSize);
        result.runs += deleted;
        result.batches += 1;
        if (deleted < batchSize || this.stopped) break;
        await new Promise((resolve) => setTimeout(resolve, BATCH_PAUSE_MS));
      }
    }
    return result;
  }
}
