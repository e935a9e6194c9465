import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { DurableDatabase } from './durable.database';
import { AsyncCheckpoints } from '../async-checkpoints';
import { DurableStore, FENCE, NewRun } from './durable.store';
import type { Lease, StepRecord, StepRow } from './row-types';

const STEP_COLUMNS = `key, name, kind, status, output, error, attempts, attempts_base, started_at, finished_at,
  undo_args, seq`;
const STEP_COLUMNS_OF_S = STEP_COLUMNS.replace(/(\w+)/g, 's.$1');
// A step's timestamps come from the database's clock: it started `elapsed` ms before this write.
const STARTED_AT = `now() - $11::float8 * interval '1 millisecond'`;
const STEP_VALUES = `$1, $4, $5, $6, $7, $8::jsonb, $9::jsonb, $10, ${STARTED_AT},
  CASE WHEN $7 = 'waiting' THEN NULL ELSE now() END, $12::jsonb`;
// A succeeded step is final: no later write (a retry of a write whose reply was lost, a zombie's
// failure record, a resume) may turn it into anything else.
// A step that succeeds after failed attempts keeps the last attempt's error: the record of what happened.
const UPSERT = `ON CONFLICT (run_id, key) DO UPDATE SET status = EXCLUDED.status, output = EXCLUDED.output,
  error = COALESCE(EXCLUDED.error, steps.error), attempts = EXCLUDED.attempts, finished_at = EXCLUDED.finished_at,
  undo_args = EXCLUDED.undo_args
  WHERE steps.status <> 'succeeded'`;

/**
 * The checkpoints of a run's steps, one statement each. Every write is fenced (it lands only while the
 * run is owned with the writer's epoch) and idempotent, so a write whose reply was lost can be sent
 * again, or resolved by reading the step back.
 */
@Injectable()
export class StepStore {
  private readonly s: string;
  private readonly channel: string;

  constructor(
    private readonly db: DurableDatabase,
    private readonly asyncCheckpoints: AsyncCheckpoints,
    private readonly runs: DurableStore,
  ) {
    this.s = db.s;
    this.channel = db.channel;
  }

  /**
   * First statement of a step transaction: if this process freezes inside it, the server ends the
   * session after `ms` idle, releasing its locks (business rows, the run row), so a frozen process can
   * never block the takeover of its run past the lease. A utility statement without parameters, so it
   * can travel in one round trip with the transaction's BEGIN (and before SET TRANSACTION ISOLATION).
   */
  transactionBound(ms: number): string {
    if (!Number.isSafeInteger(ms) || ms < 1) throw new RangeError(`invalid idle timeout ${ms}`);
    return `SET LOCAL idle_in_transaction_session_timeout = ${ms}`;
  }

  /**
   * A run's recorded steps in recording order. Rows come back one by one (no single aggregate value),
   * and the history caps bound their total size.
   */
  async loadSteps(runId: string): Promise<StepRow[]> {
    const { rows } = await this.db.query<StepRow>(
      `SELECT ${STEP_COLUMNS} FROM ${this.s}.steps WHERE run_id = $1 ORDER BY seq`,
      [runId],
    );
    return rows;
  }

  /**
   * One recorded step, and whether the run is still ours: how a write of unknown outcome is resolved.
   * A step succeeded by the run's next owner is not ours to adopt.
   */
  async readStep(lease: Lease, key: string): Promise<{ owned: boolean; step?: StepRow }> {
    const { rows } = await this.db.query<StepRow & { owned: boolean }>(
      `SELECT r.id = $1 AND r.executor = $3 AND r.epoch = $4 AND (r.status = 'running' OR r.compensating) AS owned,
         ${STEP_COLUMNS_OF_S}
       FROM ${this.s}.runs r LEFT JOIN ${this.s}.steps s ON s.run_id = r.id AND s.key = $2
       WHERE r.id = $1`,
      [lease.runId, key, lease.executorId, lease.epoch],
    );
    const row = rows[0];
    if (!row) return { owned: false };
    const { owned, ...step } = row;
    return { owned: owned === true, step: step.key === null ? undefined : step };
  }

  /**
   * The checkpoint: writes a step outcome only while the run is still ours with this epoch. The run row
   * is share-locked for the statement (or the step's transaction), so a concurrent takeover either waits
   * for this write or makes it insert nothing. Returns false when nothing was written: the lease is
   * gone, or the step had already succeeded (see holder() and readStep()). `progress` also clears the
   * run's stall count (the first new step of an execution that recovered it).
   */
  async recordStep(
    lease: Lease,
    step: StepRecord,
    manager?: EntityManager,
    progress = false,
  ): Promise<boolean> {
    // With asyncCheckpoints: a plain step's success commits asynchronously, and every write is guarded.
    const plan = this.asyncCheckpoints.plan(lease, step, manager);
    const fence = `${FENCE}${this.asyncCheckpoints.sql(plan, this.s, 13)}`;
    const owner = progress
      ? `WITH owner AS (UPDATE ${this.s}.runs SET stalls = 0 WHERE ${fence} RETURNING id)
         INSERT INTO ${this.s}.steps (run_id, key, name, kind, status, output, error, attempts, started_at,
           finished_at, undo_args)
         SELECT ${STEP_VALUES} FROM owner`
      : `INSERT INTO ${this.s}.steps (run_id, key, name, kind, status, output, error, attempts, started_at,
           finished_at, undo_args)
         SELECT ${STEP_VALUES} FROM ${this.s}.runs WHERE ${fence} FOR SHARE`;
    const { rowCount } = await this.db.query(
      `${owner} ${UPSERT}`,
      this.asyncCheckpoints.params(plan, [
        lease.runId,
        lease.executorId,
        lease.epoch,
        step.key,
        step.name,
        step.kind,
        step.status,
        step.output,
        step.error,
        step.attempts,
        step.elapsedMs,
        step.undoArgs ?? null,
      ]),
      manager,
    );
    await this.asyncCheckpoints.settle(lease, plan, rowCount === 1, () => this.runs.releaseRun(lease));
    return rowCount === 1;
  }

  /**
   * Consumes the oldest unconsumed signal `name` of a run we own and records it as the wait's step, in
   * one statement. Idempotent by step key: when the step already consumed one (a retry after a lost
   * reply), that signal's payload comes back and no other is consumed.
   */
  async consumeSignal(lease: Lease, name: string, step: StepRecord): Promise<ConsumedSignal> {
    const plan = this.asyncCheckpoints.plan(lease);
    const { rows } = await this.db.query<{ owned: boolean; consumed: boolean; payload: unknown }>(
      `WITH owner AS (
         SELECT 1 FROM ${this.s}.runs WHERE ${FENCE}${this.asyncCheckpoints.sql(plan, this.s, 8)} FOR SHARE),
       existing AS (
         SELECT output FROM ${this.s}.steps WHERE run_id = $1 AND key = $5 AND status = 'succeeded'),
       picked AS (
         SELECT s.id FROM ${this.s}.signals s
         WHERE s.run_id = $1 AND s.name = $4 AND s.consumed_by IS NULL
           AND EXISTS (SELECT 1 FROM owner) AND NOT EXISTS (SELECT 1 FROM existing)
         ORDER BY s.id LIMIT 1 FOR UPDATE),
       consumed AS (
         UPDATE ${this.s}.signals SET consumed_by = $5 FROM picked WHERE signals.id = picked.id
         RETURNING signals.payload),
       recorded AS (
         INSERT INTO ${this.s}.steps (run_id, key, name, kind, status, output, attempts, started_at, finished_at)
         SELECT $1, $5, $6, 'signal', 'succeeded', consumed.payload, 1,
           now() - $7::float8 * interval '1 millisecond', now() FROM consumed
         ON CONFLICT (run_id, key) DO UPDATE SET status = 'succeeded', output = EXCLUDED.output,
           finished_at = EXCLUDED.finished_at
         WHERE steps.status <> 'succeeded'
         RETURNING 1)
       SELECT EXISTS (SELECT 1 FROM owner) AS owned,
              EXISTS (SELECT 1 FROM recorded) OR EXISTS (SELECT 1 FROM existing) AS consumed,
              COALESCE((SELECT payload FROM consumed), (SELECT output FROM existing)) AS payload`,
      this.asyncCheckpoints.params(plan, [
        lease.runId,
        lease.executorId,
        lease.epoch,
        name,
        step.key,
        step.name,
        step.elapsedMs,
      ]),
    );
    await this.asyncCheckpoints.settle(lease, plan, rows[0].owned, () => this.runs.releaseRun(lease));
    return rows[0];
  }

  /**
   * Starts a child run and records the parent's step that waits for it, together: the child's finish
   * writes its outcome into that step (see childOutcomeSql), so the step must exist first. Idempotent:
   * sent again, it finds both. Returns whether the run is still ours and, when the child id was taken
   * before this statement, by which parent step: an id taken by another run leaves nothing written.
   */
  async startChild(lease: Lease, step: StepRecord, child: NewRun): Promise<StartedChild> {
    const plan = this.asyncCheckpoints.plan(lease);
    const { rows } = await this.db.query<StartedChild>(
      `WITH owner AS (
         SELECT 1 FROM ${this.s}.runs WHERE ${FENCE}${this.asyncCheckpoints.sql(plan, this.s, 14)} FOR SHARE),
       child AS (
         INSERT INTO ${this.s}.runs (id, workflow, version, status, input, deadline, parent_id, parent_step,
           trace_context)
         SELECT $6, $7, $8, 'pending', $9::jsonb, now() + $10::bigint * interval '1 millisecond', $1, $4, $13
         FROM owner
         ON CONFLICT (id) DO NOTHING RETURNING id),
       waiting AS (
         INSERT INTO ${this.s}.steps (run_id, key, name, kind, status, output, attempts, started_at)
         SELECT $1, $4, $5, 'child', 'waiting', $11::jsonb, 1, now() FROM owner
         WHERE NOT EXISTS (SELECT 1 FROM ${this.s}.runs c WHERE c.id = $6
                           AND (c.parent_id IS DISTINCT FROM $1 OR c.parent_step IS DISTINCT FROM $4))
         ON CONFLICT (run_id, key) DO NOTHING RETURNING 1)
       SELECT EXISTS (SELECT 1 FROM owner) AS owned,
         (SELECT count(*) FROM (SELECT pg_notify($12, 'run') FROM child) n) > 0 AS started,
         (SELECT parent_id FROM ${this.s}.runs WHERE id = $6) AS existing_parent,
         (SELECT parent_step FROM ${this.s}.runs WHERE id = $6) AS existing_step`,
      this.asyncCheckpoints.params(plan, [
        lease.runId,
        lease.executorId,
        lease.epoch,
        step.key,
        step.name,
        child.id,
        child.workflow,
        child.version,
        child.input,
        child.timeoutMs ?? null,
        step.output,
        this.channel,
        child.traceContext ?? null,
      ]),
    );
    await this.asyncCheckpoints.settle(lease, plan, rows[0].owned, () => this.runs.releaseRun(lease));
    return rows[0];
  }
}

export interface ConsumedSignal {
  owned: boolean;
  consumed: boolean;
  payload: unknown;
}

export interface StartedChild {
  owned: boolean;
  started: boolean;
  /** Parent and step of the child id when it existed before this statement (null: it did not). */
  existing_parent: string | null;
  existing_step: string | null;
}
