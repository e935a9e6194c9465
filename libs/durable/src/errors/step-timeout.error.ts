import { DurableError } from './durable.error';

/** A step attempt ran past its timeout (retryable). */
export class StepTimeoutError extends DurableError {
  readonly code = 'DURABLE_STEP_TIMEOUT';
}
