import { DurableError } from './durable.error';

/** A step call does not match the run's recorded history; never retried, `resume` works once fixed. */
export class ReplayMismatchError extends DurableError {
  readonly code = 'DURABLE_REPLAY_MISMATCH';

  constructor(
    message: string,
    readonly expected: string[],
    readonly actual: string,
  ) {
    super(message);
  }
}
