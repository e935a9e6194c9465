import { Injectable } from '@nestjs/common';
import type * as Terminus from '@nestjs/terminus';
import { DurableOptionsHolder } from '../durable.options';
import { Duration, toMilliseconds } from '../duration';
import { requirePeer } from '../optional-peer';
import { DurableDatabase } from '../persistence/durable.database';
import { NotificationListener } from '../persistence/notification.listener';
import { QueueStats } from '../telemetry';

/** Thresholds of DurableHealthIndicator.isHealthy. */
export interface DurableHealthOptions {
  /** The oldest due, unclaimed run may wait this long. Default '5m'. */
  maxBacklogAge?: Duration;
  /** This replica's last heartbeat may be this old (worker processes). Default half the lease (`leaseMs / 2`). */
  maxHeartbeatAge?: Duration;
  /** Bound on the database round trip of the check. Default '5s'. */
  timeout?: Duration;
}

/** What the indicator reports under its key (no connection strings, no payloads). */
export interface DurableHealthDetails extends Record<string, unknown> {
  executorId: string;
  database: 'reachable' | 'unreachable';
  /** Age of this replica's heartbeat by the database clock (null: client-only process, or none yet). */
  heartbeatAgeMs: number | null;
  listening: boolean;
  /** Runs due and unclaimed, and the age of the oldest, in seconds. */
  backlog: { due: number; oldestAgeSeconds: number } | null;
  /** Why it is down. */
  problems?: string[];
}

/** A terminus HealthIndicatorResult: the details under the key, with status 'up' or 'down'. */
export type DurableHealthResult<Key extends string> = Record<
  Key,
  DurableHealthDetails & { status: 'up' | 'down' }
>;

/**
 * A @nestjs/terminus health indicator for the durable engine of this process: the database answers,
 * this replica's heartbeat is recent (worker processes), its LISTEN connection is up, and the oldest
 * due run has not waited past a threshold. Needs `@nestjs/terminus` (an optional peer): import
 * DurableHealthModule, which fails at boot without it.
 * @example
 * @Get('health') @HealthCheck()
 * check() { return this.health.check([() => this.durable.isHealthy('durable', { maxBacklogAge: '2m' })]); }
 */
@Injectable()
export class DurableHealthIndicator {
  private readonly indicators: Terminus.HealthIndicatorService;

  constructor(
    private readonly db: DurableDatabase,
    private readonly listener: NotificationListener,
    private readonly queue: QueueStats,
    private readonly options: DurableOptionsHolder,
  ) {
    const terminus = requirePeer<typeof Terminus>('@nestjs/terminus', 'DurableHealthIndicator');
    this.indicators = new terminus.HealthIndicatorService();
  }

  async isHealthy<const Key extends string = 'durable'>(
    key: Key = 'durable' as Key,
    options: DurableHealthOptions = {},
  ): Promise<DurableHealthResult<Key>> {
    const { executorId, worker, leaseMs } = this.options.value;
    const maxBacklogMs = toMilliseconds(options.maxBacklogAge ?? '5m');
    const maxHeartbeatMs = toMilliseconds(options.maxHeartbeatAge ?? Math.floor(leaseMs / 2));
    const timeoutMs = toMilliseconds(options.timeout ?? '5s');
    const details: DurableHealthDetails = {
      executorId,
      database: 'reachable',
      heartbeatAgeMs: null,
      listening: this.listener.connected,
      backlog: null,
    };
    const problems: string[] = [];
    try {
      const [heartbeatAgeMs, sample] = await withTimeout(
        Promise.all([this.heartbeatAge(executorId), this.queue.sample(Math.min(timeoutMs, 1_000))]),
        timeoutMs,
      );
      details.heartbeatAgeMs = heartbeatAgeMs;
      details.backlog = { due: sample.due, oldestAgeSeconds: sample.oldestAgeSeconds };
      if (worker && (heartbeatAgeMs === null || heartbeatAgeMs > maxHeartbeatMs))
        problems.push(`heartbeat older than ${maxHeartbeatMs} ms`);
      if (sample.oldestAgeSeconds * 1000 > maxBacklogMs)
        problems.push(
          `oldest due run waiting ${Math.round(sample.oldestAgeSeconds)} s (max ${maxBacklogMs} ms)`,
        );
    } catch (error) {
      details.database = 'unreachable';
      problems.push(`database unreachable: ${(error as Error)?.message ?? String(error)}`);
    }
    if (!details.listening) problems.push('LISTEN connection down (reconnecting)');
    const session = this.indicators.check(key);
    const result = problems.length === 0 ? session.up(details) : session.down({ ...details, problems });
    return result as DurableHealthResult<Key>;
  }

  private async heartbeatAge(executorId: string): Promise<number | null> {
    const { rows } = await this.db.query<{ age_ms: number | null }>(
      `SELECT (SELECT EXTRACT(EPOCH FROM now() - heartbeat_at) * 1000 FROM ${this.db.s}.executors WHERE id = $1)::float8
         AS age_ms`,
      [executorId],
    );
    return rows[0].age_ms === null ? null : Math.max(0, Math.round(rows[0].age_ms));
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
