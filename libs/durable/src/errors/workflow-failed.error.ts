import { DurableError } from './durable.error';
import { RecordedError } from './recorded.error';

/** `handle.result()` of a failed run; `cause` is the recorded error. */
export class WorkflowFailedError extends DurableError {
  readonly code = 'DURABLE_WORKFLOW_FAILED';

  constructor(
    message: string,
    readonly runId: string,
    override readonly cause: RecordedError,
  ) {
    super(message, { cause });
  }
}
