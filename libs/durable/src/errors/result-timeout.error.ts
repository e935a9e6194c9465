import { DurableError } from './durable.error';

/** handle.result({ timeout }) gave up waiting; the run goes on. */
export class ResultTimeoutError extends DurableError {
  readonly code = 'DURABLE_RESULT_TIMEOUT';
}
