export { Schedule } from './schedule.decorator';
export { DurableSchedules } from './durable-schedules';
export { scheduledRunId } from './schedule.sweeper';
export type {
  CreateScheduleOptions,
  ScheduleCatchUp,
  ScheduleInfo,
  ScheduleOptions,
  ScheduleOverlap,
} from './schedule.interfaces';
