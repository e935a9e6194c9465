import { SCHEDULE_METADATA } from '../durable.constants';
import { defineSchedule } from './schedule-definition';
import type { ScheduleOptions } from './schedule.interfaces';

/** What @Schedule records on a method (validated when applied; the workflow name is added at startup). */
export interface ScheduleMetadata {
  cron: string;
  options: ScheduleOptions;
}

/**
 * Starts a run of this @Workflow method at every tick of a cron expression, exactly once across all
 * replicas (the run id is derived from the schedule and the tick). The run is called with the tick time.
 * The schedule is stored in the database at startup, so it survives restarts and can be paused.
 * @example
 * @Schedule('0 2 * * *', { timezone: 'Europe/Paris', overlap: 'skip', catchUp: 'latest' })
 * @Workflow()
 * async nightlyReport(tick: Date) { ... }
 */
export function Schedule(cron: string, options: ScheduleOptions = {}): MethodDecorator {
  defineSchedule(options.name ?? '$workflow', cron, options); // validates now, with a clear error
  return (_target, _propertyKey, descriptor) => {
    const method = descriptor.value as object;
    const existing = (Reflect.getMetadata(SCHEDULE_METADATA, method) as ScheduleMetadata[] | undefined) ?? [];
    Reflect.defineMetadata(SCHEDULE_METADATA, [...existing, { cron, options }], method);
    return descriptor;
  };
}
