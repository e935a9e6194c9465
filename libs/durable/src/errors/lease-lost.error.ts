import { DurableError } from './durable.error';

/** This process no longer owns the run (another executor claimed it, or it was cancelled): the checkpoint was refused. */
export class LeaseLostError extends DurableError {
  readonly code = 'DURABLE_LEASE_LOST';
}
