import { DurableError } from './durable.error';

/** An argument (id, signal name, duration, decorator option) is not acceptable. */
export class InvalidArgumentError extends DurableError {
  readonly code = 'DURABLE_INVALID_ARGUMENT';
}
