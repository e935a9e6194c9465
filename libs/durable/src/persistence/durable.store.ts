import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import type { RunStatus } from '../interfaces';
import { AsyncCheckpoints } from '../async-checkpoints';
import { QueueClaim } from '../queues/queue-claim';
import { CLAIM_INDEX_PREDICATE } from './migrations/add-queues';
import { DurableDatabase } from './durable.database';
import type { ClaimedRun, Lease, RunHolder, RunRow, StepRow } from './row-types';

// A run is ours while we hold its executor id and epoch and it is running (or, once cancelled, while
// its compensations run).
export const FENCE = `id = $1 AND executor = $2 AND epoch = $3 AND (status = 'running' OR compensating)`;
const OWNED = `(status = 'running' OR compensating)`;
// Released runs keep their place in the queue (available_at is when they first became due), so a
// takeover resumes interrupted runs before newer ones.
const RELEASED = `status = CASE WHEN status = 'running' THEN 'pending' ELSE status END, executor = NULL,
  available_at = LEAST(available_at, now()), updated_at = now()`;
const RUN_COLUMNS = `id, workflow, version, status, input, output, error, failed_step, attempts, epoch, executor,
  deadline, parent_id, compensating, created_at, updated_at`;
/** A resumed run's history travels inside its claim only when it is this small; otherwise it is read apart. */
const INLINE_HISTORY_STEPS = 100;
const INLINE_HISTORY_BYTES = 1024 * 1024;

/**
 * The run queue: starting, claiming, releasing, parking and finishing runs, one statement each, named
 * by what it does. The fenced ones write only while the run is still owned with the caller's epoch.
 */
@Injectable()
export class DurableStore {
  private readonly s: string;
  private readonly channel: string;

  constructor(
    private readonly db: DurableDatabase,
    private readonly asyncCheckpoints: AsyncCheckpoints,
    private readonly queues: QueueClaim,
  ) {
    this.s = db.s;
    this.channel = db.channel;
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
         claimed_at, stalls, trace_context)
       VALUES ($1, $2, $3, 'running', $4::jsonb, now() + $5::bigint * interval '1 millisecond', $6, $7, 1, 1, now(), 1, $8)
       ON CONFLICT (id) DO NOTHING
       RETURNING id, workflow, version, input, epoch, attempts, deadline, stalls, trace_context,
         extract(epoch FROM now()) * 1000 AS db_now`,
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
    return rows[0] && { ...rows[0], db_now: Number(rows[0].db_now), signal_count: 0 };
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
   * Claims up to `limit` due runs of the (workflow, version) pairs this process serves; each claim bumps
   * the epoch and the run's `stalls` (claims since it last made progress: its first new step, a park or
   * a finish reset them). The due runs are read per served pair (index runs_claim_idx), so runs nobody
   * here serves cost nothing. A run past its pair's stall limit comes back with `set_aside`: it is not
   * to be executed. A run claimed before (resumed, woken, taken over) comes with its history when that
   * is small, read in the same statement, so from the statement's snapshot, with the signal counter of
   * that snapshot. That history is complete when the snapshot already held the epoch this claim
   * replaces: every step write needs the run owned with some epoch, and a run is claimable only once
   * its last owner is fenced out. When another claim (or a cancel) got in between the snapshot and the
   * row lock, or the history is large, it is left out (`steps` undefined) and read afterwards.
   * Queued runs waiting for a slot are admitted by the same statement within their queue's limits
   * (queues/queue-claim.ts); the per-pair path reads only runs that need no slot (runs_claim_idx).
   */
  async claimRuns(executorId: string, served: ServedPairs, limit: number): Promise<ClaimedRun[]> {
    const { rows } = await this.db.query<ClaimedRun & { history: HistoryJson[] | null }>(
      `WITH due AS (
         SELECT c.id, p.max_stalls, c.available_at FROM unnest($2::text[], $3::text[], $5::int[]) AS p(workflow, version, max_stalls)
         CROSS JOIN LATERAL (
           SELECT id, available_at FROM ${this.s}.runs
           WHERE workflow = p.workflow AND version = p.version
             AND (${CLAIM_INDEX_PREDICATE})
             AND available_at <= now()
           ORDER BY available_at
           LIMIT $4
           FOR UPDATE SKIP LOCKED) c
         ORDER BY c.available_at
         LIMIT $4),${this.queues.sql(6)},
       claim AS (
         SELECT id, max_stalls, queue FROM (
           SELECT id, max_stalls, available_at, NULL::text AS queue FROM due
           UNION ALL
           SELECT id, max_stalls, available_at, queue FROM queue_due) both_paths
         ORDER BY available_at
         LIMIT $4),${this.queues.bumpSql()}
       UPDATE ${this.s}.runs r
       SET status = CASE WHEN r.status = 'cancelled' THEN 'cancelled' ELSE 'running' END,
         executor = $1, epoch = r.epoch + 1, attempts = r.attempts + 1, claimed_at = now(), updated_at = now(),
         stalls = r.stalls + 1, admitted_at = CASE WHEN due.queue IS NOT NULL THEN now() ELSE r.admitted_at END
       FROM claim AS due
       WHERE r.id = due.id
       RETURNING r.id, r.workflow, r.version, r.input, r.epoch, r.attempts, r.deadline, r.compensating, r.stalls,
         r.trace_context, r.queue,
         r.stalls > due.max_stalls AS set_aside, extract(epoch FROM now()) * 1000 AS db_now,
         (SELECT x.signal_count FROM ${this.s}.runs x WHERE x.id = r.id) AS signal_count,
         CASE WHEN r.attempts > 1 AND (SELECT x.epoch FROM ${this.s}.runs x WHERE x.id = r.id) = r.epoch - 1 THEN (
           SELECT CASE WHEN bool_and(h.small) IS NOT FALSE THEN
             COALESCE(json_agg(json_build_object('key', h.key, 'name', h.name, 'kind', h.kind,
               'status', h.status, 'output', h.output, 'error', h.error, 'attempts', h.attempts,
               'attempts_base', h.attempts_base, 'started_at', h.started_at, 'finished_at', h.finished_at,
               'undo_args', h.undo_args, 'seq', h.seq) ORDER BY h.seq) FILTER (WHERE h.small), '[]') END
           FROM (SELECT s.*, count(*) OVER () <= ${INLINE_HISTORY_STEPS}
                   AND sum(COALESCE(pg_column_size(s.output), 0) + COALESCE(pg_column_size(s.error), 0)
                           + COALESCE(pg_column_size(s.undo_args), 0)) OVER () <= ${INLINE_HISTORY_BYTES} AS small
                 FROM ${this.s}.steps s WHERE s.run_id = r.id) h) END AS history`,
      [executorId, served.workflows, served.versions, limit, served.maxStalls, ...this.queues.params()],
    );
    return rows.map(({ history, ...run }) => ({
      ...run,
      db_now: Number(run.db_now),
      steps: history?.map(fromHistoryJson),
    }));
  }

  /**
   * Returns to the queue the runs held by executors whose heartbeat is older than the lease, and those
   * an executor id claimed in a previous life (before its current process started: a restart with a
   * stable executor id). Locked rows (a step committing) are skipped.
   */
  async releaseOrphanedRuns(leaseMs: number): Promise<number> {
    const { rowCount } = await this.db.query(
      `UPDATE ${this.s}.runs SET ${RELEASED}
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

  /**
   * Gives one run back to the queue: its execution here ended without finishing or parking it. The
   * claim keeps counting as a stall (a run that keeps ending this way is eventually set aside).
   * Idempotent: a release whose reply was lost can be sent again.
   */
  async releaseRun(lease: Lease): Promise<boolean> {
    const { rows } = await this.db.query(
      `WITH released AS (UPDATE ${this.s}.runs SET ${RELEASED} WHERE ${FENCE} RETURNING id)
       SELECT pg_notify($4, 'run') FROM released`,
      [lease.runId, lease.executorId, lease.epoch, this.channel],
    );
    return rows.length === 1;
  }

  /**
   * Gives back this executor's runs (graceful shutdown) so another replica takes them at once. Their
   * claim does not count as a stall: the run did nothing wrong.
   */
  async releaseRunsOf(executorId: string): Promise<number> {
    const { rowCount } = await this.db.query(
      `WITH released AS (
         UPDATE ${this.s}.runs SET ${RELEASED}, stalls = GREATEST(stalls - 1, 0)
         WHERE executor = $1 AND ${OWNED} RETURNING id)
       SELECT pg_notify($2, 'run') FROM released LIMIT 1`,
      [executorId, this.channel],
    );
    return rowCount;
  }

  /** The runs this executor owns according to the database (its own sweep compares them with memory). */
  async ownedRuns(executorId: string): Promise<{ id: string; epoch: number }[]> {
    const { rows } = await this.db.query<{ id: string; epoch: number }>(
      `SELECT id, epoch FROM ${this.s}.runs WHERE executor = $1 AND ${OWNED}`,
      [executorId],
    );
    return rows;
  }

  /** Runs that are due but served by no executor that could claim them (reported, never dropped). */
  async findUnservedRuns(overdueMs: number, served: ServedPairs, limit: number) {
    const { rows } = await this.db.query<{ id: string; workflow: string; version: string }>(
      `SELECT id, workflow, version FROM ${this.s}.runs
       WHERE status IN ('pending', 'sleeping', 'waiting') AND available_at <= now() - $1::bigint * interval '1 millisecond'
         AND (workflow, version) NOT IN (SELECT * FROM unnest($2::text[], $3::text[]))
       ORDER BY available_at LIMIT $4`,
      [overdueMs, served.workflows, served.versions, limit],
    );
    return rows;
  }

  /**
   * One UPDATE per interval per process. `starting` opens a new life of this executor id. Returns the
   * database's clock (ms since the epoch), which every time-based decision of the process follows.
   */
  async heartbeat(executorId: string, starting = false): Promise<number> {
    const { rows } = await this.db.query<{ db_now: string }>(
      `INSERT INTO ${this.s}.executors (id, heartbeat_at, started_at) VALUES ($1, now(), now())
       ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(),
         started_at = CASE WHEN $2 THEN now() ELSE executors.started_at END
       RETURNING extract(epoch FROM now()) * 1000 AS db_now`,
      [executorId, starting],
    );
    return Number(rows[0].db_now);
  }

  /**
   * Ends a run we own (its listeners are told after the commit: DoneNotifier). A child run also writes
   * its outcome into the step of its parent that waits for it, and wakes the parent if it is parked on
   * it: in this statement, so exactly once. Returns false when the lease is gone (or the finish already happened: see holder()).
   */
  async finishRun(lease: Lease, outcome: RunOutcomeRecord): Promise<boolean> {
    // With asyncCheckpoints: only if the run's asynchronous checkpoints are still there.
    const plan = this.asyncCheckpoints.plan(lease);
    const { rows } = await this.db.query(
      `WITH finished AS (
         UPDATE ${this.s}.runs SET status = $4, output = $5::jsonb, error = $6::jsonb, failed_step = $7,
           executor = NULL, compensating = false, stalls = 0, waits_for = NULL, updated_at = now()
         WHERE ${FENCE}${this.asyncCheckpoints.sql(plan, this.s, 9)} RETURNING id, parent_id, parent_step),
       ${childOutcomeSql(this.s, { status: '$4', output: '$5::jsonb', error: '$6::jsonb' })}
       SELECT f.id,
         (SELECT count(*) FROM (SELECT pg_notify($8, 'run') FROM woken WHERE woken.due) n) AS woken
       FROM finished f`,
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

  /**
   * Parks a run we own until `wakeInMs` from now (null: until woken), or its deadline if sooner, waiting
   * for the signal names and child runs ('$child:<id>') in `waitsFor`; any replica resumes it. Refused
   * (`parked: false`) when the lease is gone, or when something it waits for may have happened since
   * the execution last looked: a signal of a name it waits for is unconsumed (`pending`), a child step
   * it waits for has an outcome (`children`), or the run's signal counter moved past `seenCount`. Every
   * signal send and child finish bumps that counter on the locked run row, so one committed during this
   * statement is caught too. The counter returned is this statement's, for the next attempt.
   */
  async park(lease: Lease, park: ParkRequest): Promise<ParkOutcome> {
    const plan = this.asyncCheckpoints.plan(lease);
    const { rows } = await this.db.query<{
      parked: boolean;
      pending: string[] | null;
      children: StepRow[] | null;
      signal_count: number | null;
    }>(
      `WITH pending AS (
         SELECT DISTINCT name FROM ${this.s}.signals
         WHERE run_id = $1 AND consumed_by IS NULL AND name = ANY($6::text[])),
       children AS (
         SELECT key, name, kind, status, output, error, attempts, started_at, finished_at FROM ${this.s}.steps
         WHERE run_id = $1 AND key = ANY($8::text[]) AND status <> 'waiting'),
       parked AS (
         UPDATE ${this.s}.runs SET executor = NULL, stalls = 0, updated_at = now(), waits_for = $6::text[],
           status = CASE WHEN status = 'cancelled' THEN status ELSE $4 END,
           available_at = LEAST(COALESCE(now() + $5::bigint * interval '1 millisecond', 'infinity'),
                                COALESCE(deadline, 'infinity'))
         WHERE ${FENCE}${this.asyncCheckpoints.sql(plan, this.s, 9)} AND signal_count = $7
           AND NOT EXISTS (SELECT 1 FROM pending) AND NOT EXISTS (SELECT 1 FROM children)
         RETURNING 1)
       SELECT EXISTS (SELECT 1 FROM parked) AS parked,
         (SELECT array_agg(name) FROM pending) AS pending,
         (SELECT json_agg(children) FROM children) AS children,
         (SELECT signal_count FROM ${this.s}.runs WHERE ${FENCE}) AS signal_count`,
      this.asyncCheckpoints.params(plan, [
        lease.runId,
        lease.executorId,
        lease.epoch,
        park.status,
        park.wakeInMs,
        park.waitsFor,
        park.seenCount,
        park.childKeys,
      ]),
    );
    const row = rows[0];
    // Refused for a signal or a child that arrived is no lost checkpoint: only a refusal while owned
    // and nothing arrived (see settle) may mean one.
    const arrived = (row.pending?.length ?? 0) > 0 || (row.children?.length ?? 0) > 0;
    await this.asyncCheckpoints.settle(lease, plan, row.parked || arrived, () => this.releaseRun(lease));
    return {
      parked: row.parked,
      owned: row.parked || row.signal_count !== null,
      pending: row.pending ?? [],
      children: (row.children ?? []).map((step) => fromHistoryJson(step as unknown as HistoryJson)),
      signalCount: row.signal_count ?? park.seenCount,
    };
  }

  /** Ends the compensation of a cancelled run. */
  async finishCompensation(lease: Lease): Promise<boolean> {
    const { rowCount } = await this.db.query(
      `UPDATE ${this.s}.runs SET compensating = false, executor = NULL, stalls = 0, updated_at = now() WHERE ${FENCE}`,
      [lease.runId, lease.executorId, lease.epoch],
    );
    return rowCount === 1;
  }

  /** Who holds a run now: read when a fenced write was refused, to learn why. */
  async holder(runId: string): Promise<RunHolder | undefined> {
    const { rows } = await this.db.query<RunHolder>(
      `SELECT status, executor, epoch, compensating, error FROM ${this.s}.runs WHERE id = $1`,
      [runId],
    );
    return rows[0];
  }

  /** The run's signal counter now (read before a history read, so never newer than that history). */
  async signalCount(runId: string): Promise<number> {
    const { rows } = await this.db.query<{ signal_count: number }>(
      `SELECT signal_count FROM ${this.s}.runs WHERE id = $1`,
      [runId],
    );
    return rows[0]?.signal_count ?? 0;
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

/**
 * CTEs over `finished` (id, parent_id, parent_step: runs that just ended with the given outcome): a
 * child run's outcome goes into its parent's waiting step, and the parent's signal counter moves,
 * waking it when it is parked waiting for this child. Defines `child_step` and `woken` (id, due).
 */
export function childOutcomeSql(
  s: string,
  outcome: { status: string; output: string; error: string },
): string {
  return `
       child_step AS (
         UPDATE ${s}.steps st SET status = CASE WHEN ${outcome.status} = 'succeeded' THEN 'succeeded' ELSE 'failed' END,
           output = CASE WHEN ${outcome.status} = 'succeeded' THEN ${outcome.output} END, error = ${outcome.error},
           finished_at = now()
         FROM finished f
         WHERE f.parent_step IS NOT NULL AND st.run_id = f.parent_id AND st.key = f.parent_step
           AND st.status = 'waiting'
         RETURNING st.run_id),
       woken AS (
         UPDATE ${s}.runs p SET signal_count = p.signal_count + 1, updated_at = now(),
           available_at = CASE WHEN p.status = 'waiting' AND '$child:' || f.id = ANY(p.waits_for)
             THEN now() ELSE p.available_at END
         FROM finished f
         WHERE f.parent_step IS NOT NULL AND p.id = f.parent_id
         RETURNING p.id, p.status = 'waiting' AND '$child:' || f.id = ANY(p.waits_for) AS due)`;
}

export interface ServedPairs {
  workflows: string[];
  versions: string[];
  /** Per pair: claims without progress after which a run is set aside. */
  maxStalls: number[];
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

export interface ParkRequest {
  status: 'sleeping' | 'waiting';
  /** null: no wake time (a signal or a child wakes it), the deadline still does. */
  wakeInMs: number | null;
  /** Signal names, and '$child:<run id>' of child runs, that wake it. */
  waitsFor: string[];
  /** The run's signal counter as this execution last saw it. */
  seenCount: number;
  /** Step keys of the child runs it waits for. */
  childKeys: string[];
}

export interface ParkOutcome {
  parked: boolean;
  /** False when the run is no longer ours (lease lost, cancelled, or an earlier park landed). */
  owned: boolean;
  /** Signal names waited for that have an unconsumed signal. */
  pending: string[];
  /** Child steps waited for that have an outcome now. */
  children: StepRow[];
  signalCount: number;
}

export interface RunFilter {
  statuses?: RunStatus[];
  workflow?: string;
  createdAfter?: Date;
  createdBefore?: Date;
  cursor?: { createdAt: string; id: string };
  limit: number;
}

/** A steps row inside a JSON value: timestamps are ISO strings. */
export type HistoryJson = Omit<StepRow, 'started_at' | 'finished_at'> & {
  started_at: string;
  finished_at: string | null;
};

export function fromHistoryJson(step: HistoryJson): StepRow {
  return {
    ...step,
    started_at: new Date(step.started_at),
    finished_at: step.finished_at === null ? null : new Date(step.finished_at),
  };
}
