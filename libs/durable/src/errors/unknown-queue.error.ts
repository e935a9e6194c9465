import { DurableError } from './durable.error';

/** start() named a queue that is not in DurableModule's `queues` option; nothing was written. */
export class UnknownQueueError extends DurableError {
  readonly code = 'DURABLE_UNKNOWN_QUEUE';
}
