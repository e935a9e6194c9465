import { Injectable } from '@nestjs/common';
import { AsyncCheckpoints } from '../async-checkpoints';
import type { RunStatus } from '../interfaces';
import { DurableDatabase } from '../persistence/durable.database';
import { DurableStore, FENCE } from '../persistence/durable.store';
import type { Lease } from '../persistence/row-types';

/** A stored event of a run's stream. */
export interface RunEventRow {
  seq: number;
  key: string;
  value: unknown;
  created_at: string;
}

const PAGE = 100;

/** The SQL of the runs' event streams (Durable.setEvent, client.getEvent, client.events). */
@Injectable()
export class RunEventsStore {
  constructor(
    private readonly db: DurableDatabase,
    private readonly asyncCheckpoints: AsyncCheckpoints,
    private readonly store: DurableStore,
  ) {}

  /**
   * Appends an event to a run we own and records it as the step `stepKey`, in one statement, and
   * notifies readers. Idempotent: if the step is already recorded (a retried statement whose first try
   * committed), nothing is appended. The run row is locked FOR NO KEY UPDATE, so two events of one run
   * take consecutive numbers. Returns whether we still own the run, and the event's number.
   */
  async append(
    lease: Lease,
    step: { key: string; name: string },
    event: { key: string; value: string },
  ): Promise<{ owned: boolean; seq: number | null }> {
    const s = this.db.s;
    // With asyncCheckpoints: appended only if the run's asynchronous checkpoints are still there.
    const plan = this.asyncCheckpoints.plan(lease);
    const { rows } = await this.db.query<{ owned: boolean; seq: number | null }>(
      `WITH owner AS (SELECT id FROM ${s}.runs WHERE ${FENCE}${this.asyncCheckpoints.sql(plan, s, 9)} FOR NO KEY UPDATE),
       next AS (SELECT COALESCE(max(seq), 0) + 1 AS seq FROM ${s}.run_events WHERE run_id = $1),
       step AS (
         INSERT INTO ${s}.steps (run_id, key, name, kind, status, output, attempts, started_at, finished_at)
         SELECT $1, $4, $5, 'step', 'succeeded', jsonb_build_object('seq', next.seq), 1, now(), now()
         FROM owner, next
         ON CONFLICT (run_id, key) DO NOTHING RETURNING 1),
       event AS (
         INSERT INTO ${s}.run_events (run_id, seq, key, value)
         SELECT $1, next.seq, $6, $7::jsonb FROM step, next RETURNING seq)
       SELECT EXISTS (SELECT 1 FROM owner) AS owned, (SELECT seq FROM event) AS seq,
         (SELECT pg_notify($8, 'event:' || $1) FROM event) IS NOT NULL AS notified`,
      this.asyncCheckpoints.params(plan, [
        lease.runId,
        lease.executorId,
        lease.epoch,
        step.key,
        step.name,
        event.key,
        event.value,
        this.db.channel,
      ]),
    );
    await this.asyncCheckpoints.settle(lease, plan, rows[0].owned, () => this.store.releaseRun(lease));
    return { owned: rows[0].owned, seq: rows[0].seq };
  }

  /** The latest value of `key` for a run, and the run's status (undefined: no such run). */
  async latest(runId: string, key: string): Promise<{ status?: RunStatus; found: boolean; value: unknown }> {
    const s = this.db.s;
    const { rows } = await this.db.query<{ status: RunStatus | null; found: boolean; value: unknown }>(
      `SELECT (SELECT status FROM ${s}.runs WHERE id = $1) AS status,
         e.seq IS NOT NULL AS found, e.value
       FROM (SELECT 1) one
       LEFT JOIN LATERAL (SELECT seq, value FROM ${s}.run_events WHERE run_id = $1 AND key = $2
                          ORDER BY seq DESC LIMIT 1) e ON true`,
      [runId, key],
    );
    const row = rows[0];
    return { status: row.status ?? undefined, found: row.found, value: row.value };
  }

  /** Events after `afterSeq` (a page), and the run's status, read in one snapshot. */
  async after(runId: string, afterSeq: number): Promise<{ status?: RunStatus; events: RunEventRow[] }> {
    const s = this.db.s;
    const { rows } = await this.db.query<{ status: RunStatus | null; events: RunEventRow[] }>(
      `SELECT (SELECT status FROM ${s}.runs WHERE id = $1) AS status,
         COALESCE((SELECT json_agg(e ORDER BY e.seq) FROM (
           SELECT seq, key, value, created_at FROM ${s}.run_events WHERE run_id = $1 AND seq > $2
           ORDER BY seq LIMIT ${PAGE}) e), '[]') AS events`,
      [runId, afterSeq],
    );
    return { status: rows[0].status ?? undefined, events: rows[0].events };
  }
}
