import type { Cron } from 'croner';
import type { ScheduleCatchUp } from './schedule.interfaces';

/** At most this many ticks fire per schedule and sweep ('all' after a long outage continues next sweep). */
export const MAX_TICKS_PER_SWEEP = 100;

export interface TickPlan {
  /** Ticks to fire now, oldest first. */
  fire: Date[];
  /** Missed ticks dropped by the catch-up policy, as a range (for the log). */
  dropped: { from: Date; until: Date } | null;
  /** The first tick not handled: where the next sweep starts. */
  next: Date | null;
}

/**
 * Which due ticks (from `from`, a tick, up to `now`) fire. A tick older than `now - missedAfterMs` is
 * missed: missed ticks all fire ('all'), only the most recent fires ('latest') or none does ('none');
 * the others are on time and always fire.
 */
export function planTicks(
  cron: Cron,
  from: Date,
  now: Date,
  catchUp: ScheduleCatchUp,
  missedAfterMs: number,
): TickPlan {
  const cutoff = new Date(now.getTime() - missedAfterMs);
  const fire: Date[] = [];
  let dropped: TickPlan['dropped'] = null;
  // Missed ticks: [from, cutoff).
  if (from < cutoff) {
    if (catchUp === 'all') {
      for (let tick: Date | null = from; tick && tick < cutoff; tick = cron.nextRun(tick)) {
        if (fire.length === MAX_TICKS_PER_SWEEP) return { fire, dropped, next: tick };
        fire.push(tick);
      }
    } else {
      const previous = cron.previousRuns(1, cutoff)[0];
      const latest = previous && previous >= from && previous < cutoff ? previous : from;
      if (catchUp === 'latest') fire.push(latest);
      if (catchUp === 'none' || latest > from) dropped = { from, until: cutoff };
    }
  }
  // On-time ticks: [max(from, cutoff), now].
  const start = from > cutoff ? from : cutoff;
  for (let tick = atOrAfter(cron, start); tick && tick <= now; tick = cron.nextRun(tick)) {
    if (fire.length === MAX_TICKS_PER_SWEEP) return { fire, dropped, next: tick };
    fire.push(tick);
  }
  return { fire, dropped, next: cron.nextRun(now) };
}

/** The first tick at or after `date`. */
export function atOrAfter(cron: Cron, date: Date): Date | null {
  return cron.nextRun(new Date(date.getTime() - 1));
}
