import { DurableError } from './durable.error';

/** A value cannot round-trip through JSON (function, circular, BigInt, symbol, Map...); never retried. */
export class NonSerializableError extends DurableError {
  readonly code = 'DURABLE_NON_SERIALIZABLE';

  constructor(
    message: string,
    readonly path: string,
  ) {
    super(message);
  }
}
