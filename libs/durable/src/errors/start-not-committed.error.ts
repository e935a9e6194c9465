import { DurableError } from './durable.error';

/** Awaiting the result of a run inside the uncommitted transaction that started it: it would wait forever. */
export class StartNotCommittedError extends DurableError {
  readonly code = 'DURABLE_START_NOT_COMMITTED';
}
