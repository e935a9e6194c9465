import type { QueueOptions, ResolvedQueue } from '../queues/queue.options';
import type { ResolvedRetention, RetentionOptions } from '../retention/retention.options';

/**
 * Options of DurableModule.forRoot / forRootAsync. Every value is validated at boot.
 * @example DurableModule.forRoot({ schema: 'durable', concurrency: 20, leaseMs: 30_000 })
 */
export interface DurableModuleOptions {
  /** Schema holding the library's tables; a plain SQL identifier. Default 'durable'. */
  schema?: string;
  /** Identity of this process for leases. Default hostname-pid; a stable one (pod name) speeds recovery. */
  executorId?: string;
  /** false makes a client-only process that never claims runs. Default true. */
  worker?: boolean;
  /** Runs executed at once by this process. Default 20. */
  concurrency?: number;
  /** A run whose executor has not heartbeaten for this long is taken over. Default 30000. */
  leaseMs?: number;
  /** Interval of this process's heartbeat (one UPDATE per interval). Default 5000; must be < leaseMs / 2. */
  heartbeatMs?: number;
  /** Fallback polling for new, due and orphaned runs (LISTEN/NOTIFY does the fast path). Default 1000. */
  pollIntervalMs?: number;
  /** Recover this executor's and dead executors' runs at bootstrap. Default true. */
  recoverOnStartup?: boolean;
  /** Bound on draining in-flight runs at shutdown before leases are released. Default 10000. */
  shutdownTimeoutMs?: number;
  /** Largest JSON payload (input, output, error, signal) accepted. Default 1 MiB. */
  maxPayloadBytes?: number;
  /**
   * Send the library's statements as named prepared statements (parsed and planned once per pooled
   * connection). Default true; set false behind a pooler that cannot keep them (PgBouncer in
   * transaction mode before 1.21, or without max_prepared_statements).
   */
  preparedStatements?: boolean;
  /**
   * OpenTelemetry spans for run executions and step attempts, when `@opentelemetry/api` is installed
   * (without a registered tracer provider they cost next to nothing). Default true.
   */
  tracing?: boolean;
  /** OpenTelemetry metrics (runs, steps, claims, queue), when `@opentelemetry/api` is installed. Default true. */
  metrics?: boolean;
  /**
   * The queue gauges (due runs, age of the oldest) read the database at most this often, and only when
   * a metrics reader collects them (one indexed query per interval per process). Default 5000.
   */
  queueMetricsIntervalMs?: number;
  /**
   * Deletes finished runs (with their steps and signals) and silent executor rows periodically, in
   * bounded batches, one replica at a time. Default: nothing is deleted.
   * @example retention: { succeeded: '7d', failed: '30d', cancelled: '7d' }
   */
  retention?: RetentionOptions;
  /**
   * Commit the checkpoint of a non-transactional step that succeeded asynchronously
   * (`synchronous_commit = off` for that commit only): PostgreSQL acknowledges it before flushing it to
   * disk, so such a step costs no wait for the disk. Everything else stays synchronous: starts,
   * transactional steps (their writes and checkpoint), failed and retried attempts, sleeps, signals,
   * child runs, compensations, finishes. Default false.
   *
   * What it changes: a crash of the database (not of this process) may lose the checkpoints of the last
   * moments (at most about 3 x `wal_writer_delay`, 600 ms by default, and only those written since the
   * run's last synchronous write); those steps run again, with the same idempotency keys, as steps
   * interrupted by a process crash do. Nothing durable is built on a lost checkpoint: the run's next
   * synchronous write (its finish, a transactional step, a sleep...) commits only if its asynchronous
   * checkpoints are still there, and otherwise the run resumes from what the database holds. Steps that
   * already ran after a lost checkpoint had seen its first output, which a re-execution may not
   * reproduce: use this where non-transactional steps are deterministic for their inputs, or idempotent
   * by key whatever their inputs. See the README (Performance).
   */
  asyncCheckpoints?: boolean;
  /**
   * Claims of a run without progress (its process died, its lease was lost, an engine write failed)
   * after which it is set aside as failed (RunSetAsideError, resumable) instead of being retried
   * forever. A graceful shutdown does not count. Default 10; `@Workflow({ maxRecoveryAttempts })`
   * overrides it per workflow.
   */
  maxRecoveryAttempts?: number;
  /** Steps (of every kind) a run may record; the step that would cross it fails. Default 10000. */
  maxHistorySteps?: number;
  /** Bytes of step outputs a run may record; the step that would cross it fails. Default 64 MiB. */
  maxHistoryBytes?: number;
  /** Unconsumed signals a run may hold; a signal past it is refused (LimitExceededError). Default 1000. */
  maxPendingSignals?: number;
  /** Bytes of unconsumed signal payloads a run may hold. Default 16 MiB. */
  maxPendingSignalBytes?: number;
  /**
   * Named queues with their limits (concurrency, per-key concurrency, rate), enforced in the claim
   * across every replica; `start(..., { queue })` puts a run on one. Deployment configuration: give
   * every replica the same queues (a replica without a queue never claims its runs).
   * @example queues: { provider: { concurrency: 10, perKeyConcurrency: 2, rateLimit: { limit: 10, period: '1s' } } }
   */
  queues?: Record<string, QueueOptions>;
}

/** Options fixed when the module is defined (they choose injection tokens). */
export interface DurableModuleExtras {
  /** Name of the TypeORM DataSource (as given to TypeOrmModule.forRoot({ name })). Default: the default one. */
  dataSourceName?: string;
}

/** Options with defaults applied and validated. */
export type ResolvedDurableOptions = Required<Omit<DurableModuleOptions, 'retention' | 'queues'>> & {
  retention: ResolvedRetention | undefined;
  queues: ResolvedQueue[];
};
