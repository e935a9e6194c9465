import { DurableError } from './durable.error';

/** A run id already exists for another workflow. */
export class RunConflictError extends DurableError {
  readonly code = 'DURABLE_RUN_CONFLICT';
}
