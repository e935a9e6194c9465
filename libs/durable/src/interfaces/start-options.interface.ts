import type { EntityManager } from 'typeorm';
import type { Duration } from '../duration';
import type { RunInfo } from './run-info.interface';

/** Options of DurableClient.start. */
export interface StartOptions {
  /** Run id and idempotency key (1-200 characters). Starting an existing id returns that run. */
  id?: string;
  /** Insert the run in this transaction: it exists only if the transaction commits. */
  manager?: EntityManager;
  /** Overrides @Workflow({ timeout }). */
  timeout?: Duration;
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
  status(): Promise<RunInfo<R>>;
}
