import { Injectable, OnApplicationBootstrap } from '@nestjs/common';
import { DurableOptionsHolder } from '../durable.options';
import { DurableDatabase } from '../persistence/durable.database';
import type { ResolvedQueue } from './queue.options';

/** A queued run waiting for a slot is read at most this many times the queue's free slots per claim. */
const PER_KEY_OVERFETCH = 4;
/** Runs holding a slot of their queue: started (admitted) and not finished, parked ones included. */
const HOLDS_SLOT = `admitted_at IS NOT NULL AND status IN ('pending','running','sleeping','waiting')`;
/** The shortest spacing between admissions of a rate-limited queue; a higher rate admits in bursts. */
export const MIN_SPACING_MS = 25;

/**
 * How a rate limit of `limit` runs per `periodMs` spreads its admissions: at most `burst` runs in any
 * `windowMs` (= burst * periodMs / limit), burst being the fewest runs that keep that window at
 * MIN_SPACING_MS or more (1 for rates up to 40/s), so a limit of 20/s admits one run every 50 ms,
 * not 20 at once.
 */
export function ratePacing(limit: number, periodMs: number): { burst: number; windowMs: number } {
  const burst = Math.min(limit, Math.max(1, Math.ceil((limit * MIN_SPACING_MS) / periodMs)));
  return { burst, windowMs: (burst * periodMs) / limit };
}

/**
 * The queues of this deployment and their part of the claim statement (DurableStore.claimRuns). The
 * claim admits queued runs (sets `admitted_at`) only within each queue's limits, counted in the
 * statement itself, so the limits hold across replicas:
 *
 * - slots: concurrency minus the runs of the queue holding a slot, rate limit minus the runs admitted
 *   within the period before the database's now(), the rate's burst minus the runs admitted within its
 *   burst window (ratePacing: admissions spread evenly over the period), and the caller's batch size,
 *   the least of them;
 * - candidates: waiting runs of served (workflow, version) pairs, due, in (priority DESC, available_at)
 *   order through runs_queue_due_idx, skipping keys at their perKeyConcurrency, at most that many of
 *   one key per batch; locked with SKIP LOCKED.
 *
 * Counts read from the statement's snapshot are only valid if no other claim admitted runs to the queue
 * since, so the claim locks the queue's row (SKIP LOCKED: a queue another replica is claiming from is
 * left for the next claim) and compares its claim_seq, read locked (the newest committed version),
 * with the snapshot's: if another claim admitted runs in between, the queue is skipped too. Every
 * admitting claim bumps claim_seq. Runs that hold a slot (parked, released, taken over) are claimed
 * again through the unqueued path: they need no new slot.
 */
@Injectable()
export class QueueClaim implements OnApplicationBootstrap {
  readonly queues: readonly ResolvedQueue[];
  readonly names: readonly string[];
  private readonly s: string;

  constructor(
    options: DurableOptionsHolder,
    private readonly db: DurableDatabase,
  ) {
    this.queues = options.value.queues;
    this.names = this.queues.map((queue) => queue.name);
    this.s = db.s;
  }

  /** Each queue's row must exist before a claim can lock it. */
  async onApplicationBootstrap(): Promise<void> {
    if (this.names.length === 0) return;
    await this.db.query(
      `INSERT INTO ${this.s}.queues (name) SELECT unnest($1::text[]) ON CONFLICT (name) DO NOTHING`,
      [this.names],
    );
  }

  /** The claim's parameters for the queues, from `$first` on (see sql()). */
  params(): unknown[] {
    return [
      this.names,
      this.queues.map((q) => q.concurrency),
      this.queues.map((q) => q.perKeyConcurrency),
      this.queues.map((q) => q.rateLimit),
      this.queues.map((q) => q.ratePeriodMs),
      this.queues.map((q) => (q.rateLimit === null ? null : ratePacing(q.rateLimit, q.ratePeriodMs!).burst)),
      this.queues.map((q) =>
        q.rateLimit === null ? null : ratePacing(q.rateLimit, q.ratePeriodMs!).windowMs,
      ),
    ];
  }

  /**
   * CTEs `queue_free` (name, per_key, slots) and `queue_due` (id, max_stalls, available_at, queue): the
   * queued runs this claim admits (see bumpSql() for the CTE that must follow the claim's choice). Expects the claim's `$2` workflows, `$3` versions, `$4` limit, `$5`
   * max stalls, and the queue parameters at `$first`..`$first+6`.
   */
  sql(first: number): string {
    const s = this.s;
    const [names, concurrency, perKey, rate, period, burst, burstWindow] = [0, 1, 2, 3, 4, 5, 6].map(
      (i) => `$${first + i}`,
    );
    return `
       queue_free AS MATERIALIZED (
         SELECT q.name, q.per_key,
           LEAST($4::int, q.concurrency - active.n, q.rate_limit - recent.n, q.burst - spaced.n) AS slots
         FROM unnest(${names}::text[], ${concurrency}::int[], ${perKey}::int[], ${rate}::int[], ${period}::bigint[],
                     ${burst}::int[], ${burstWindow}::float8[])
           AS q(name, concurrency, per_key, rate_limit, period_ms, burst, burst_window_ms)
         JOIN ${s}.queues seen ON seen.name = q.name
         JOIN LATERAL (SELECT l.claim_seq FROM ${s}.queues l WHERE l.name = q.name FOR UPDATE SKIP LOCKED) locked
           ON locked.claim_seq = seen.claim_seq
         CROSS JOIN LATERAL (
           SELECT count(*)::int AS n FROM ${s}.runs a
           WHERE q.concurrency IS NOT NULL AND a.queue = q.name AND a.${HOLDS_SLOT}) active
         CROSS JOIN LATERAL (
           SELECT count(*)::int AS n FROM (
             SELECT 1 FROM ${s}.runs w
             WHERE q.rate_limit IS NOT NULL AND w.queue = q.name AND w.admitted_at IS NOT NULL
               AND w.admitted_at > now() - q.period_ms * interval '1 millisecond'
             LIMIT q.rate_limit) x) recent
         CROSS JOIN LATERAL (
           SELECT count(*)::int AS n FROM (
             SELECT 1 FROM ${s}.runs w
             WHERE q.burst IS NOT NULL AND w.queue = q.name AND w.admitted_at IS NOT NULL
               AND w.admitted_at > now() - q.burst_window_ms * interval '1 millisecond'
             LIMIT q.burst) x) spaced),
       queue_due AS MATERIALIZED (
         SELECT c.id, c.max_stalls, c.available_at, c.queue
         FROM queue_free f
         CROSS JOIN LATERAL (
           SELECT w.* FROM (
             SELECT k.*, row_number() OVER (PARTITION BY k.queue_key ORDER BY k.priority DESC, k.available_at, k.id) AS nth
             FROM (
               SELECT r.id, r.queue, r.queue_key, r.priority, r.available_at, p.max_stalls, busy.n AS key_active
               FROM ${s}.runs r
               CROSS JOIN LATERAL (
                 SELECT p.max_stalls FROM unnest($2::text[], $3::text[], $5::int[]) AS p(workflow, version, max_stalls)
                 WHERE p.workflow = r.workflow AND p.version = r.version) p
               CROSS JOIN LATERAL (
                 SELECT count(*)::int AS n FROM ${s}.runs a
                 WHERE f.per_key IS NOT NULL AND r.queue_key IS NOT NULL
                   AND a.queue = r.queue AND a.queue_key = r.queue_key AND a.${HOLDS_SLOT}) busy
               WHERE r.queue = f.name AND r.status = 'pending' AND r.queue IS NOT NULL AND r.admitted_at IS NULL
                 AND r.available_at <= now() AND (f.per_key IS NULL OR busy.n < f.per_key)
               ORDER BY r.priority DESC, r.available_at, r.id
               LIMIT CASE WHEN f.per_key IS NULL THEN f.slots ELSE f.slots * ${PER_KEY_OVERFETCH} END
               FOR UPDATE OF r SKIP LOCKED) k) w
           WHERE f.per_key IS NULL OR w.queue_key IS NULL OR w.nth + w.key_active <= f.per_key
           ORDER BY w.priority DESC, w.available_at, w.id
           LIMIT f.slots) c
         WHERE f.slots > 0)`;
  }

  /** CTE `queue_bumped`: after `claim` (id, queue, ...), marks the queues it admitted runs to. */
  bumpSql(): string {
    return `
       queue_bumped AS (
         UPDATE ${this.s}.queues SET claim_seq = claim_seq + 1
         WHERE name IN (SELECT queue FROM claim WHERE queue IS NOT NULL))`;
  }
}
