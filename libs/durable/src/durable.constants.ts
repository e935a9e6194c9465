/** Injection token for the TypeORM DataSource the library writes checkpoints to. */
export const DURABLE_DATA_SOURCE = Symbol('DURABLE_DATA_SOURCE');

/** Metadata keys attached by the decorators (read only by DurableMetadataAccessor). */
export const WORKFLOW_METADATA = 'durable:workflow';
export const STEP_METADATA = 'durable:step';
export const SCHEDULE_METADATA = 'durable:schedule';

/** Marks the wrapper installed on a provider instance so `start(service.method)` finds the workflow. */
export const WORKFLOW_NAME_SYMBOL = Symbol('durable:workflow-name');

/** Name of the periodic recovery sweep in @nestjs/schedule's SchedulerRegistry. */
export const SWEEP_INTERVAL_NAME = 'durable:sweep';
export const HEARTBEAT_INTERVAL_NAME = 'durable:heartbeat';
/** Claims paced to a rate-limited queue's spacing while this process admits runs to it. */
export const RATE_PACE_INTERVAL_NAME = 'durable:rate-pace';
export const SCHEDULES_INTERVAL_NAME = 'durable:schedules';

export const DEFAULT_SCHEMA = 'durable';
export const DEFAULT_VERSION = '1';
export const DEFAULT_CONCURRENCY = 20;
export const DEFAULT_LEASE_MS = 30_000;
export const DEFAULT_HEARTBEAT_MS = 5_000;
export const DEFAULT_POLL_INTERVAL_MS = 1_000;
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000;
export const DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024;
export const DEFAULT_QUEUE_METRICS_INTERVAL_MS = 5_000;
export const DEFAULT_MAX_RECOVERY_ATTEMPTS = 10;
export const DEFAULT_MAX_HISTORY_STEPS = 10_000;
export const DEFAULT_MAX_HISTORY_BYTES = 64 * 1024 * 1024;
export const DEFAULT_MAX_PENDING_SIGNALS = 1_000;
export const DEFAULT_MAX_PENDING_SIGNAL_BYTES = 16 * 1024 * 1024;

/** Ids, signal names, workflow and step names: any string of this many characters. */
export const MAX_ID_LENGTH = 200;

/** A retry backoff longer than this parks the run instead of holding it in memory. */
export const PARK_RETRY_AFTER_MS = 5_000;

export const DEFAULT_RETRY = {
  maxAttempts: 3,
  initialDelayMs: 1_000,
  backoffFactor: 2,
  maxDelayMs: 60_000,
} as const;
