import { DurableError } from './durable.error';

/** An explicit limit (signals pending per run, their bytes) refused the operation; nothing was stored. */
export class LimitExceededError extends DurableError {
  readonly code = 'DURABLE_LIMIT_EXCEEDED';
}
