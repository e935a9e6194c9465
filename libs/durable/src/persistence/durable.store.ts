import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { AsyncCheckpoints } from '../async-checkpoints';
import type { RunStatus } from '../interfaces';
import { DurableDatabase } from './durable.database';
import type { ClaimedRun, Lease, RunRow, StepRecord, StepRow } from './row-types';

// A run is ours while we hold its executor id and epoch and it is running (or, once cancelled, while
// its compensations run).
export const FENCE = `id = $1 AND executor = $2 AND epoch = $3 AND (status = 'running' OR compensating)`;
const OWNED = `(status = 'running' OR compensating)`;
// Released runs keep their place in the queue (available_at is when they first became due), so a
// takeover resumes interrupted runs before newer ones.
const RELEASED = `status = CASE WHEN status = 'running' THEN 'pending' ELSE status END, executor = NULL`;
const RUN_COLUMNS = `id, workflow, version, status, input, output, error, failed_step, attempts, epoch, deadline,
  parent_id, compensating, created_at, updated_at`;

/**
 * The run queue and the checkpoints: every statement an execution runs, one method each, named by what
 * it does. The fenced ones write only while the run is still owned with the caller's epoch.
 */
@Injectable()
export class DurableStore {
  private readonly s: string;
  private readonly channel: string;

  constructor(
    private readonly db: DurableDatabase,
    private readonly asyncCheckpoints: AsyncCheckpoints,
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

  /** Inserts a run waiting for a worker and wakes the workers (on commit). Returns false if the id exists. */
  async insertPendingRun(run: NewRun, manager?: EntityManager): Promise<boolean> {
    const { rows } = await this.db.query(
      `WITH inserted AS (
         INSERT INTO ${this.s}.runs (id, workflow, version, status, input, deadline, parent_id, trace_context)
         VALUES ($1, $2, $3, 'pending', $4::jsonb, now() + $5::bigint * interval '1 millisecond', $6, $8)
         ON CONFLICT (id) DO NOTHING RETURNING id)
       SELECT pg_notify($7, 'run') FROM inserted`,
      [
        run.id,
        run.workflow,
        run.version,
        run.input,
        run.timeoutMs ?? null,
        run.parentId ?? null,
        this.channel,
        run.traceContext ?? null,
      ],
      manager,
    );
    return rows.length === 1;
  }

  /** Inserts a run already claimed by this executor (epoch 1), to execute it in this process at once. */
  async insertOwnedRun(run: NewRun, executorId: string): Promise<ClaimedRun | undefined> {
    const { rows } = await this.db.query<ClaimedRun>(
      `INSERT INTO ${this.s}.runs (id, workflow, version, status, input, deadline, parent_id, executor, epoch, attempts,
         claimed_at, trace_context)
       VALUES ($1, $2, $3, 'running', $4::jsonb, now() + $5::bigint * interval '1 millisecond', $6, $7, 1, 1, now(), $8)
       ON CONFLICT (id) DO NOTHING
       RETURNING id, workflow, version, input, epoch, attempts, deadline, trace_context`,
      [
        run.id,
        run.workflow,
        run.version,
        run.input,
        run.timeoutMs ?? null,
        run.parentId ?? null,
        executorId,
        run.traceContext ?? null,
      ],
    );
    return rows[0];
  }

  async findRunWorkflow(id: string, manager?: EntityManager): Promise<string | undefined> {
    const { rows } = await this.db.query<{ workflow: string }>(
      `SELECT workflow FROM ${this.s}.runs WHERE id = $1`,
      [id],
      manager,
    );
    return rows[0]?.workflow;
  }

  /**
   * Claims up to `limit` due runs of the given (workflow, version) pairs; each claim bumps the epoch.
   * A run claimed before (resumed, woken, taken over) comes with its history, read in the same statement,
   * so from the statement's snapshot. That history is complete when the snapshot already held the
   * epoch this claim replaces: every step write needs the run owned with some epoch, and a run is
   * claimable only once its last owner is fenced out. When another claim (or a cancel) got in between
   * the snapshot and the row lock, the history is left out (`steps` undefined) and read afresh later.
   */
  async claimRuns(
    executorId: string,
    served: { workflows: string[]; versions: string[] },
    limit: number,
  ): Promise<ClaimedRun[]> {
    const { rows } = await this.db.query<ClaimedRun & { history: HistoryJson[] | null }>(
      `UPDATE ${this.s}.runs r
       SET status = CASE WHEN r.status = 'cancelled' THEN 'cancelled' ELSE 'running' END,
         executor = $1, epoch = r.epoch + 1, attempts = r.attempts + 1, claimed_at = now(), updated_at = now()
       FROM (SELECT id FROM ${this.s}.runs
             WHERE (status IN ('pending','sleeping','waiting') OR (compensating AND executor IS NULL))
               AND available_at <= now()
               AND (workflow, version) IN (SELECT * FROM unnest($2::text[], $3::text[]))
             ORDER BY available_at
             LIMIT $4
             FOR UPDATE SKIP LOCKED) due
       WHERE r.id = due.id
       RETURNING r.id, r.workflow, r.version, r.input, r.epoch, r.attempts, r.deadline, r.compensating, r.trace_context,
         CASE WHEN r.attempts > 1 AND (SELECT x.epoch FROM ${this.s}.runs x WHERE x.id = r.id) = r.epoch - 1 THEN (
           SELECT COALESCE(json_agg(json_build_object('key', s.key, 'name', s.name, 'kind', s.kind,
             'status', s.status, 'output', s.output, 'error', s.error, 'attempts', s.attempts,
             'started_at', s.started_at, 'finished_at', s.finished_at, 'undo_args', s.undo_args)
             ORDER BY s.started_at, s.seq), '[]')
           FROM ${this.s}.steps s WHERE s.run_id = r.id) END AS history`,
      [executorId, served.workflows, served.versions, limit],
    );
    return rows.map(({ history, ...run }) => ({ ...run, steps: history?.map(fromHistoryJson) }));
  }

  /**
   * Returns to the queue the runs held by executors whose heartbeat is older than the lease, and those
   * an executor id claimed in a previous life (before its current process started: a restart with a
   * stable executor id). Locked rows (a step committing) are skipped.
   */
  async releaseOrphanedRuns(leaseMs: number): Promise<number> {
    const { rowCount } = await this.db.query(
      `UPDATE ${this.s}.runs SET ${RELEASED}, available_at = LEAST(available_at, now()), updated_at = now()
       WHERE id IN (
         SELECT r.id FROM ${this.s}.runs r LEFT JOIN ${this.s}.executors e ON e.id = r.executor
         WHERE (r.status = 'running' OR r.compensating) AND r.executor IS NOT NULL
           AND (e.heartbeat_at IS NULL OR e.heartbeat_at < now() - $1::bigint * interval '1 millisecond'
                OR r.claimed_at < e.started_at)
         FOR UPDATE OF r SKIP LOCKED)`,
      [leaseMs],
    );
    return rowCount;
  }

  /** Gives one run back to the queue (e.g. it cannot be executed here after all). */
  async releaseRun(lease: Lease): Promise<boolean> {
    const { rowCount } = await this.db.query(
      `UPDATE ${this.s}.runs SET ${RELEASED}, available_at = LEAST(available_at, now()), updated_at = now()
       WHERE ${FENCE}`,
      [lease.runId, lease.executorId, lease.epoch],
    );
    return rowCount === 1;
  }

  /** Gives back this executor's runs (graceful shutdown) so another replica takes them at once. */
  async releaseRunsOf(executorId: string): Promise<number> {
    const { rowCount } = await this.db.query(
      `WITH released AS (
         UPDATE ${this.s}.runs SET ${RELEASED}, available_at = LEAST(available_at, now()), updated_at = now()
         WHERE executor = $1 AND ${OWNED} RETURNING id)
       SELECT pg_notify($2, 'run') FROM released LIMIT 1`,
      [executorId, this.channel],
    );
    return rowCount;
  }

  /** Runs that are due but served by no executor that could claim them (reported, never dropped). */
  async findUnservedRuns(
    overdueMs: number,
    served: { workflows: string[]; versions: string[] },
    limit: number,
  ) {
    const { rows } = await this.db.query<{ id: string; workflow: string; version: string }>(
      `SELECT id, workflow, version FROM ${this.s}.runs
       WHERE status IN ('pending', 'sleeping', 'waiting') AND available_at <= now() - $1::bigint * interval '1 millisecond'
         AND (workflow, version) NOT IN (SELECT * FROM unnest($2::text[], $3::text[]))
       ORDER BY available_at LIMIT $4`,
      [overdueMs, served.workflows, served.versions, limit],
    );
    return rows;
  }

  /** One UPDATE per interval per process. `starting` opens a new life of this executor id. */
  async heartbeat(executorId: string, starting = false): Promise<void> {
    await this.db.query(
      `INSERT INTO ${this.s}.executors (id, heartbeat_at, started_at) VALUES ($1, now(), now())
       ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(),
         started_at = CASE WHEN $2 THEN now() ELSE executors.started_at END`,
      [executorId, starting],
    );
  }

  async loadSteps(runId: string): Promise<StepRow[]> {
    const { rows } = await this.db.query<StepRow>(
      `SELECT key, name, kind, status, output, error, attempts, started_at, finished_at, undo_args
       FROM ${this.s}.steps WHERE run_id = $1 ORDER BY started_at, seq`,
      [runId],
    );
    return rows;
  }

  /**
   * The checkpoint: writes a step outcome only while the run is still ours with this epoch. The run row
   * is share-locked for the statement (or the step's transaction), so a concurrent takeover either waits
   * for this write or makes it insert nothing. Returns false when the lease is gone.
   */
  async recordStep(lease: Lease, step: StepRecord, manager?: EntityManager): Promise<boolean> {
    const plan = this.asyncCheckpoints.plan(lease, step, manager);
    const { rowCount } = await this.db.query(
      `INSERT INTO ${this.s}.steps (run_id, key, name, kind, status, output, error, attempts, started_at, finished_at,
         undo_args)
       SELECT $1, $4, $5, $6, $7, $8::jsonb, $9::jsonb, $10, $11, $12, $13::jsonb
       FROM ${this.s}.runs WHERE ${FENCE}${this.asyncCheckpoints.sql(plan, this.s, 14)} FOR SHARE
       ON CONFLICT (run_id, key) DO UPDATE SET status = EXCLUDED.status, output = EXCLUDED.output,
         error = EXCLUDED.error, attempts = EXCLUDED.attempts, finished_at = EXCLUDED.finished_at,
         undo_args = EXCLUDED.undo_args`,
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
        // ISO strings: cheaper for pg than formatting Dates in local time, and unambiguous.
        step.startedAt.toISOString(),
        step.finishedAt?.toISOString() ?? null,
        step.undoArgs ?? null,
      ]),
      manager,
    );
    await this.asyncCheckpoints.settle(lease, plan, rowCount === 1, () => this.releaseRun(lease));
    return rowCount === 1;
  }

  /** Ends a run we own and tells every listener. Returns false when the lease is gone. */
  async finishRun(lease: Lease, outcome: RunOutcomeRecord): Promise<boolean> {
    const plan = this.asyncCheckpoints.plan(lease);
    const { rows } = await this.db.query(
      `WITH finished AS (
         UPDATE ${this.s}.runs SET status = $4, output = $5::jsonb, error = $6::jsonb, failed_step = $7,
           executor = NULL, compensating = false, updated_at = now()
         WHERE ${FENCE}${this.asyncCheckpoints.sql(plan, this.s, 9)} RETURNING id)
       SELECT pg_notify($8, 'done:' || id) FROM finished`,
      this.asyncCheckpoints.params(plan, [
        lease.runId,
        lease.executorId,
        lease.epoch,
        outcome.status,
        outcome.output,
        outcome.error,
        outcome.failedStep,
        this.channel,
      ]),
    );
    await this.asyncCheckpoints.settle(lease, plan, rows.length === 1, () => this.releaseRun(lease));
    return rows.length === 1;
  }

  /** Parks a run we own until `wakeInMs` from now (or its deadline, if sooner); any replica resumes it. */
  async parkRun(lease: Lease, status: 'sleeping' | 'waiting', wakeInMs: number): Promise<boolean> {
    const plan = this.asyncCheckpoints.plan(lease);
    const { rowCount } = await this.db.query(
      `UPDATE ${this.s}.runs SET executor = NULL, updated_at = now(),
         status = CASE WHEN status = 'cancelled' THEN status ELSE $4 END,
         available_at = LEAST(now() + $5::bigint * interval '1 millisecond', COALESCE(deadline, 'infinity'))
       WHERE ${FENCE}${this.asyncCheckpoints.sql(plan, this.s, 6)}`,
      this.asyncCheckpoints.params(plan, [lease.runId, lease.executorId, lease.epoch, status, wakeInMs]),
    );
    await this.asyncCheckpoints.settle(lease, plan, rowCount === 1, () => this.releaseRun(lease));
    return rowCount === 1;
  }

  /**
   * Consumes the oldest unconsumed signal `name` of a run we own and records it as the wait's step, in
   * one statement. Returns whether we still own the run, the payload if one was consumed, and the run's
   * signal counter (for a park that must not miss a signal sent after this read).
   */
  async consumeSignal(lease: Lease, name: string, step: StepRecord): Promise<ConsumedSignal> {
    const plan = this.asyncCheckpoints.plan(lease);
    const { rows } = await this.db.query<{
      signal_count: number | null;
      consumed: boolean;
      payload: unknown;
    }>(
      `WITH owner AS (
         SELECT signal_count FROM ${this.s}.runs WHERE ${FENCE}${this.asyncCheckpoints.sql(plan, this.s, 8)} FOR SHARE),
       picked AS (
         SELECT s.id FROM ${this.s}.signals s
         WHERE s.run_id = $1 AND s.name = $4 AND s.consumed_by IS NULL AND EXISTS (SELECT 1 FROM owner)
         ORDER BY s.id LIMIT 1 FOR UPDATE),
       consumed AS (
         UPDATE ${this.s}.signals SET consumed_by = $5 FROM picked WHERE signals.id = picked.id
         RETURNING signals.payload),
       recorded AS (
         INSERT INTO ${this.s}.steps (run_id, key, name, kind, status, output, attempts, started_at, finished_at)
         SELECT $1, $5, $6, 'signal', 'succeeded', consumed.payload, 1, $7, now() FROM consumed
         ON CONFLICT (run_id, key) DO UPDATE SET status = 'succeeded', output = EXCLUDED.output,
           finished_at = EXCLUDED.finished_at
         RETURNING 1)
       SELECT (SELECT signal_count FROM owner) AS signal_count,
              EXISTS (SELECT 1 FROM recorded) AS consumed,
              (SELECT payload FROM consumed) AS payload`,
      this.asyncCheckpoints.params(plan, [
        lease.runId,
        lease.executorId,
        lease.epoch,
        name,
        step.key,
        step.name,
        step.startedAt.toISOString(),
      ]),
    );
    const row = rows[0];
    await this.asyncCheckpoints.settle(lease, plan, row.signal_count !== null, () => this.releaseRun(lease));
    return {
      owned: row.signal_count !== null,
      consumed: row.consumed,
      payload: row.payload,
      signalCount: row.signal_count ?? 0,
    };
  }

  /**
   * Parks a run waiting for signal `name` until `wakeInMs` (null: no timeout). Refused (false) when the
   * lease is gone or a signal may have arrived since the consume; the caller then consumes again. Two
   * checks close every window: a signal committed before this statement's snapshot is seen by NOT
   * EXISTS; one committed later has moved the locked row's signal_count (re-checked on the new row).
   * The count alone is not enough: a consume that waited on the sender's lock reads the new count but
   * not the new signal.
   */
  async parkForSignal(
    lease: Lease,
    name: string,
    signalCount: number,
    wakeInMs: number | null,
  ): Promise<boolean> {
    const { rowCount } = await this.db.query(
      `UPDATE ${this.s}.runs SET status = 'waiting', waiting_for = $6, executor = NULL, updated_at = now(),
         available_at = LEAST(COALESCE(now() + $5::bigint * interval '1 millisecond', 'infinity'),
                              COALESCE(deadline, 'infinity'))
       WHERE ${FENCE} AND signal_count = $4
         AND NOT EXISTS (SELECT 1 FROM ${this.s}.signals s
                         WHERE s.run_id = $1 AND s.name = $6 AND s.consumed_by IS NULL)`,
      [lease.runId, lease.executorId, lease.epoch, signalCount, wakeInMs, name],
    );
    return rowCount === 1;
  }

  /** Ends the compensation of a cancelled run. */
  async finishCompensation(lease: Lease): Promise<boolean> {
    const { rowCount } = await this.db.query(
      `UPDATE ${this.s}.runs SET compensating = false, executor = NULL, updated_at = now() WHERE ${FENCE}`,
      [lease.runId, lease.executorId, lease.epoch],
    );
    return rowCount === 1;
  }

  async getRun(id: string): Promise<RunRow | undefined> {
    const { rows } = await this.db.query<RunRow>(`SELECT ${RUN_COLUMNS} FROM ${this.s}.runs WHERE id = $1`, [
      id,
    ]);
    return rows[0];
  }

  async listRuns(filter: RunFilter): Promise<(RunRow & { cursor_ts: string })[]> {
    const { rows } = await this.db.query<RunRow & { cursor_ts: string }>(
      `SELECT ${RUN_COLUMNS}, created_at::text AS cursor_ts FROM ${this.s}.runs
       WHERE ($1::text[] IS NULL OR status = ANY($1::text[]))
         AND ($2::text IS NULL OR workflow = $2)
         AND ($3::timestamptz IS NULL OR date_trunc('milliseconds', created_at) > $3)
         AND ($4::timestamptz IS NULL OR created_at < $4)
         AND ($5::timestamptz IS NULL OR (created_at, id) < ($5::timestamptz, $6::text))
       ORDER BY created_at DESC, id DESC
       LIMIT $7`,
      [
        filter.statuses ?? null,
        filter.workflow ?? null,
        filter.createdAfter ?? null,
        filter.createdBefore ?? null,
        filter.cursor?.createdAt ?? null,
        filter.cursor?.id ?? null,
        filter.limit,
      ],
    );
    return rows;
  }
}

export interface NewRun {
  id: string;
  workflow: string;
  version: string;
  /** JSON text of the arguments array. */
  input: string;
  timeoutMs?: number;
  parentId?: string;
  /** Trace context of the code that started the run (see ExecutionObserver.startContext). */
  traceContext?: string;
}

export interface RunOutcomeRecord {
  status: Extract<RunStatus, 'succeeded' | 'failed'>;
  output: string | null;
  error: string | null;
  failedStep: string | null;
}

export interface RunFilter {
  statuses?: RunStatus[];
  workflow?: string;
  createdAfter?: Date;
  createdBefore?: Date;
  cursor?: { createdAt: string; id: string };
  limit: number;
}

export interface ConsumedSignal {
  owned: boolean;
  consumed: boolean;
  payload: unknown;
  signalCount: number;
}

/** A steps row inside a JSON history: timestamps are ISO strings. */
type HistoryJson = Omit<StepRow, 'started_at' | 'finished_at'> & {
  started_at: string;
  finished_at: string | null;
};

function fromHistoryJson(step: HistoryJson): StepRow {
  return {
    ...step,
    started_at: new Date(step.started_at),
    finished_at: step.finished_at === null ? null : new Date(step.finished_at),
  };
}
