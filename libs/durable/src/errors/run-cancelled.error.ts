import { DurableError } from './durable.error';

/** The run was cancelled: `handle.result()` rejects with it, and the running step sees it. Never retried. */
export class RunCancelledError extends DurableError {
  readonly code = 'DURABLE_RUN_CANCELLED';

  constructor(
    message: string,
    readonly runId: string,
    readonly reason?: string,
  ) {
    super(message);
  }
}
