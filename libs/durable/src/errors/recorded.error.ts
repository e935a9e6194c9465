import { ErrorInfo } from '../interfaces';

/**
 * An error as it was recorded (name, message, stack): what a replayed failed step rethrows and what
 * WorkflowFailedError carries as `cause`. `name` is the original class name.
 */
export class RecordedError extends Error {
  readonly code?: string;

  constructor(info: ErrorInfo) {
    super(info.message);
    this.name = info.name;
    if (info.stack !== undefined) this.stack = info.stack;
    if (info.code !== undefined) this.code = info.code;
  }
}
