import { DurableError } from './durable.error';

/**
 * The run was claimed more than maxRecoveryAttempts times without progress (each execution of it ended
 * with its process dying, its lease lost, or an engine failure), so it was set aside as failed instead
 * of being retried forever. Fix the cause, then resume it.
 */
export class RunSetAsideError extends DurableError {
  readonly code = 'DURABLE_RUN_SET_ASIDE';
}
