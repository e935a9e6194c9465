import type { Duration } from '../duration';

/** A constructor of errors that must not be retried. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type ErrorClass = abstract new (...args: any[]) => Error;

/** Retry policy of a step: exponential backoff with jitter. */
export interface RetryOptions {
  /** Attempts in all, the first included. Default 3. 1 disables retries. */
  maxAttempts?: number;
  /** Delay before the second attempt. Default '1s'. */
  initialDelay?: Duration;
  /** Growth of the delay per attempt. Default 2. */
  backoffFactor?: number;
  /** Upper bound of a delay. Default '1m'. */
  maxDelay?: Duration;
  /** Errors (instanceof) that fail the step at once. */
  nonRetryable?: ErrorClass[];
}

/** Options of @Step. */
export interface StepOptions {
  /** Name in the run's history; defaults to the method name. */
  name?: string;
  /** Body and checkpoint commit in one transaction (exactly-once database effects). */
  transactional?: boolean;
  /** Isolation level of a transactional step's transaction. Default: the DataSource's. */
  isolation?: 'READ COMMITTED' | 'REPEATABLE READ' | 'SERIALIZABLE';
  /**
   * Name of a method of the same provider that undoes this step, called as `undo(output, ...args)`
   * when the workflow later fails or is cancelled (saga). Compensations run durably, in reverse order.
   */
  compensate?: string;
  /** Per-attempt timeout; the step's AbortSignal fires and the attempt fails with StepTimeoutError. */
  timeout?: Duration;
  /** Retry policy; default 3 attempts, 1 s initial delay, factor 2, max 1 min. */
  retry?: RetryOptions;
}
