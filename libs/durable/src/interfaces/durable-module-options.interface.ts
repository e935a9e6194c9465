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
}

/** Options fixed when the module is defined (they choose injection tokens). */
export interface DurableModuleExtras {
  /** Name of the TypeORM DataSource (as given to TypeOrmModule.forRoot({ name })). Default: the default one. */
  dataSourceName?: string;
}

/** Options with defaults applied and validated. */
export type ResolvedDurableOptions = Required<Omit<DurableModuleOptions, 'retention'>> & {
  retention: ResolvedRetention | undefined;
};
