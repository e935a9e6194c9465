import { Injectable } from '@nestjs/common';

/**
 * The database's clock as seen from this process. Every time that decides something (wake times,
 * deadlines, timeouts) is the database's, so an app server whose clock is off changes nothing: the
 * offset is learned from the `now()` the heartbeat, claims and inline starts return. Timers still run
 * on Node's monotonic clock; only the instants they aim at come from here.
 */
@Injectable()
export class DurableClock {
  private offsetMs = 0;

  /** Milliseconds since the epoch on the database's clock (estimated). */
  now(): number {
    return Date.now() + this.offsetMs;
  }

  /** Learns the offset from a `now()` the database just returned. */
  observe(databaseNowMs: number | undefined): void {
    if (databaseNowMs === undefined || !Number.isFinite(databaseNowMs)) return;
    this.offsetMs = databaseNowMs - Date.now();
  }
}
