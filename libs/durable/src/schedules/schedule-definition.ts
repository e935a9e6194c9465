import { Cron } from 'croner';
import { toMilliseconds } from '../duration';
import { InvalidArgumentError } from '../errors';
import { messages } from '../durable.messages';
import { assertValidId } from '../validation';
import type { ScheduleCatchUp, ScheduleOptions, ScheduleOverlap } from './schedule.interfaces';

export const MAX_SCHEDULE_NAME_LENGTH = 150;
const OVERLAPS: ScheduleOverlap[] = ['skip', 'allow', 'queue'];
const CATCH_UPS: ScheduleCatchUp[] = ['none', 'latest', 'all'];
const DEFAULT_MISSED_AFTER_MS = 60_000;

/** A schedule's definition, validated: what is stored in the schedules table. */
export interface ScheduleDefinition {
  name: string;
  workflow: string;
  cron: string;
  timezone: string | null;
  overlap: ScheduleOverlap;
  catchUp: ScheduleCatchUp;
  missedAfterMs: number;
}

/** Validates a schedule (cron, time zone, policies) and applies the defaults; throws InvalidArgumentError. */
export function defineSchedule(
  workflow: string,
  cron: string,
  options: ScheduleOptions = {},
): ScheduleDefinition {
  const name = options.name ?? workflow;
  assertValidId('schedule name', name);
  const fail = (problem: string) => {
    throw new InvalidArgumentError(messages.invalidSchedule(name, problem));
  };
  if (name.length > MAX_SCHEDULE_NAME_LENGTH) fail(`its name is over ${MAX_SCHEDULE_NAME_LENGTH} characters`);
  if (options.overlap !== undefined && !OVERLAPS.includes(options.overlap))
    fail(`overlap must be one of ${OVERLAPS.join(', ')}`);
  if (options.catchUp !== undefined && !CATCH_UPS.includes(options.catchUp))
    fail(`catchUp must be one of ${CATCH_UPS.join(', ')}`);
  if (options.timezone !== undefined && (typeof options.timezone !== 'string' || !options.timezone))
    fail('timezone must be an IANA time zone name');
  const definition: ScheduleDefinition = {
    name,
    workflow,
    cron: typeof cron === 'string' ? cron.trim() : cron,
    timezone: options.timezone ?? null,
    overlap: options.overlap ?? 'skip',
    catchUp: options.catchUp ?? 'latest',
    missedAfterMs:
      options.missedAfter === undefined ? DEFAULT_MISSED_AFTER_MS : toMilliseconds(options.missedAfter),
  };
  try {
    if (cronOf(definition).nextRun(new Date()) === null) fail(`cron "${cron}" never fires`);
  } catch (error) {
    if (error instanceof InvalidArgumentError) throw error;
    fail(
      `cron ${JSON.stringify(cron)}${options.timezone ? ` in time zone "${options.timezone}"` : ''} is invalid (${(error as Error).message})`,
    );
  }
  return definition;
}

/** The croner matcher of a schedule (never started: it only computes times). */
export function cronOf(definition: Pick<ScheduleDefinition, 'cron' | 'timezone'>): Cron {
  if (typeof definition.cron !== 'string') throw new TypeError('the cron expression must be a string');
  return new Cron(definition.cron, { timezone: definition.timezone ?? 'Etc/UTC', paused: true });
}
