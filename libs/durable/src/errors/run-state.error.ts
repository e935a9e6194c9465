import { DurableError } from './durable.error';

/** The run is not in a state that allows the operation (a signal to a finished run, resume of a running one). */
export class RunStateError extends DurableError {
  readonly code = 'DURABLE_RUN_STATE';
}
