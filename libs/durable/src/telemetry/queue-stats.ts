import { Injectable } from '@nestjs/common';
import { DurableOptionsHolder } from '../durable.options';
import { DurableDatabase } from '../persistence/durable.database';

/** The run queue at one moment, by the database clock. */
export interface QueueSample {
  /**
   * Runs due now and not claimed (pending, or parked and past their wake time). Queued runs waiting for
   * a slot of their queue are left out: they wait because of the queue's limits, not for a worker.
   */
  due: number;
  /** Seconds since the oldest of them became due; 0 when none is. */
  oldestAgeSeconds: number;
  /** When it was read (this process's clock), for its age. */
  sampledAt: number;
}

/**
 * Samples the queue for the metrics and the health check: one statement on the claim index
 * (runs_ready_idx), at most once per `queueMetricsIntervalMs` in this process, however often it is
 * asked (concurrent askers share the read in flight).
 */
@Injectable()
export class QueueStats {
  private last?: QueueSample;
  private reading?: Promise<QueueSample>;

  constructor(
    private readonly db: DurableDatabase,
    private readonly options: DurableOptionsHolder,
  ) {}

  /** The latest sample, read again when older than `maxAgeMs` (default: the option). */
  async sample(maxAgeMs = this.options.value.queueMetricsIntervalMs): Promise<QueueSample> {
    if (this.last && Date.now() - this.last.sampledAt < maxAgeMs) return this.last;
    this.reading ??= this.read().finally(() => (this.reading = undefined));
    return this.reading;
  }

  private async read(): Promise<QueueSample> {
    const { rows } = await this.db.query<{ due: number; oldest_age: number | null }>(
      `SELECT count(*)::int AS due, EXTRACT(EPOCH FROM now() - min(available_at))::float8 AS oldest_age
       FROM ${this.db.s}.runs
       WHERE ((status IN ('pending','sleeping','waiting') AND (queue IS NULL OR admitted_at IS NOT NULL))
              OR (compensating AND executor IS NULL))
         AND available_at <= now()`,
      [],
    );
    const row = rows[0];
    this.last = { due: row.due, oldestAgeSeconds: Math.max(0, row.oldest_age ?? 0), sampledAt: Date.now() };
    return this.last;
  }
}
