import { DurableError } from './durable.error';

/** A schedule with that name already exists. */
export class ScheduleConflictError extends DurableError {
  readonly code = 'DURABLE_SCHEDULE_CONFLICT';
}
