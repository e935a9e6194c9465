import { DurableError } from './durable.error';

/** An input, output, error or signal payload is over maxPayloadBytes once encoded. */
export class PayloadTooLargeError extends DurableError {
  readonly code = 'DURABLE_PAYLOAD_TOO_LARGE';
}
