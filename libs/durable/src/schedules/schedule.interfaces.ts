import type { Duration } from '../duration';

/** What a tick does while the schedule's previous run has not finished. */
export type ScheduleOverlap = 'skip' | 'allow' | 'queue';

/** What happens to ticks missed (not fired within `missedAfter` of their time, e.g. all replicas down). */
export type ScheduleCatchUp = 'none' | 'latest' | 'all';

/** Options of @Schedule. */
export interface ScheduleOptions {
  /** Unique schedule name (at most 150 characters). Default: the workflow's name. */
  name?: string;
  /** IANA time zone the cron expression is read in (e.g. 'Europe/Paris'). Default: UTC. */
  timezone?: string;
  /**
   * While the previous run of this schedule has not finished, a tick is skipped ('skip', the default),
   * starts another run at once ('allow'), or waits for the previous run to finish ('queue').
   */
  overlap?: ScheduleOverlap;
  /**
   * Ticks missed by more than `missedAfter` (every replica was down): none of them run ('none'), only
   * the most recent one runs ('latest', the default), or every one runs ('all').
   */
  catchUp?: ScheduleCatchUp;
  /** A tick not fired within this time of its due time counts as missed. Default '1m'. */
  missedAfter?: Duration;
}

/** Options of client.schedules.create: a schedule made at run time, stored in the database. */
export interface CreateScheduleOptions extends Omit<ScheduleOptions, 'name'> {
  /** The workflow to start: its registered name. */
  workflow: string;
  /** Cron expression: 5 fields, or 6 with seconds first ('*\/10 * * * * *'). */
  cron: string;
  /** Arguments passed after the tick time: the run is called as workflow(tickTime, ...args). */
  args?: unknown[];
}

/** A stored schedule, as client.schedules.get/list return it. */
export interface ScheduleInfo {
  name: string;
  workflow: string;
  cron: string;
  timezone: string | null;
  overlap: ScheduleOverlap;
  catchUp: ScheduleCatchUp;
  missedAfterMs: number;
  args: unknown[];
  /** 'decorator' (declared with @Schedule, kept in sync at startup) or 'client' (made at run time). */
  source: 'decorator' | 'client';
  paused: boolean;
  /** The next tick to fire (null until the first sweep after a create, resume or change). */
  nextTickAt: Date | null;
  /** Id of the last run the schedule started. */
  lastRunId: string | null;
  /** Ticks waiting for the previous run to finish (overlap 'queue'). */
  deferredTicks: Date[];
  createdAt: Date;
  updatedAt: Date;
}
