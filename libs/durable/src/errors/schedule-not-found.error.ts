import { DurableError } from './durable.error';

/** No schedule has that name. */
export class ScheduleNotFoundError extends DurableError {
  readonly code = 'DURABLE_SCHEDULE_NOT_FOUND';
}
