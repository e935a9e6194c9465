import type { EntityManager } from 'typeorm';
import type { Duration } from '../duration';
import type { RunInfo } from './run-info.interface';

/** Options of DurableClient.start. */
export interface StartOptions {
  /** Run id and idempotency key (1-200 characters). Starting an existing id returns that run. */
  id?: string;
  /** Insert the run in this transaction: it exists only if the transaction commits. */
  manager?: EntityManager;
  /** Overrides @Workflow({ timeout }); counted from when the run becomes due (after a delay). */
  timeout?: Duration;
  /** Not claimed before this much time has passed (database time). Not with `startAt`. */
  delay?: Duration;
  /** Not claimed before this instant. Not with `delay`. */
  startAt?: Date;
  /**
   * At most one unfinished run of this workflow per dedup key: while one exists, start returns its
   * handle (whose id then differs from the one asked for) instead of starting another.
   */
  dedupKey?: string;
  /**
   * At most one run per key and window, with the latest input: calls in the same window (aligned per
   * key) update the input of one pending run, which starts when the window ends. Not with `id`,
   * `delay`, `startAt` or `dedupKey`.
   */
  debounce?: { key: string; window: Duration };
  /**
   * The queue (a name from DurableModule's `queues` option) whose limits the run starts under: it is
   * claimed only when the queue has a free slot and rate budget. An unknown name throws
   * UnknownQueueError. Default: `@Workflow({ queue })`, else no queue.
   */
  queue?: string;
  /** With `queue`: the run's key (e.g. a tenant id) for the queue's `perKeyConcurrency`. */
  key?: string;
  /**
   * With `queue`: higher is claimed first within the queue (strictly; equal priorities in due order).
   * An integer from 0 to 1000000. Default 0.
   */
  priority?: number;
}

/** Options of WorkflowHandle.result. */
export interface ResultOptions {
  /** Give up waiting (ResultTimeoutError) after this long; the run goes on. */
  timeout?: Duration;
}

/** A started run. */
export interface WorkflowHandle<R = unknown> {
  readonly id: string;
  /** Resolves with the output; rejects with WorkflowFailedError, RunCancelledError or ResultTimeoutError. */
  result(options?: ResultOptions): Promise<R>;
  /** The run with its steps, or null when no run has this id (as DurableClient.status). */
  status(): Promise<RunInfo<R> | null>;
}
