import { DurableError } from './durable.error';

/** DurableModule options are invalid; thrown at boot. */
export class InvalidOptionsError extends DurableError {
  readonly code = 'DURABLE_INVALID_OPTIONS';
}
