import { DurableError } from './durable.error';

/** No run has that id. */
export class RunNotFoundError extends DurableError {
  readonly code = 'DURABLE_RUN_NOT_FOUND';
}
