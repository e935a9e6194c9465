import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { isTransient } from '../engine/transient-errors';
import { isFinished, RunStatus } from '../interfaces';
import { DurableDatabase } from './durable.database';
import { childOutcomeSql } from './durable.store';

/** Deadlocks and serialization failures of a control operation are retried this many times in all. */
const CONTROL_ATTEMPTS = 5;

/**
 * Operations from outside a run: signals, cancel and resume. Each locks the run row first, so it
 * serializes with the run's own checkpoints and parks.
 */
@Injectable()
export class RunControlStore {
  constructor(private readonly db: DurableDatabase) {}

  /**
   * Stores a signal for a run that has not finished and wakes the run if it is parked waiting for it.
   * The run row is locked first, so a concurrent park either sees the signal or sees the counter move.
   * Refused (`limit`) when the run already holds as many unconsumed signals, or bytes of them, as the
   * limits allow.
   */
  async sendSignal(runId: string, name: string, payload: string, limits: SignalLimits): Promise<SignalSent> {
    return this.transaction(async (manager) => {
      const { rows } = await this.db.query<{ status: RunStatus; pending: string; bytes: string }>(
        `SELECT r.status,
           (SELECT count(*) FROM ${this.db.s}.signals s WHERE s.run_id = r.id AND s.consumed_by IS NULL) AS pending,
           (SELECT COALESCE(sum(octet_length(s.payload::text)), 0) FROM ${this.db.s}.signals s
             WHERE s.run_id = r.id AND s.consumed_by IS NULL) AS bytes
         FROM ${this.db.s}.runs r WHERE r.id = $1 FOR UPDATE OF r`,
        [runId],
        manager,
      );
      const run = rows[0];
      if (!run || isFinished(run.status)) return { status: run?.status };
      if (Number(run.pending) >= limits.maxPending) return { status: run.status, limit: 'signals' };
      if (Number(run.bytes) + Buffer.byteLength(payload) > limits.maxBytes)
        return { status: run.status, limit: 'bytes' };
      await this.db.query(
        `WITH stored AS (
           INSERT INTO ${this.db.s}.signals (run_id, name, payload) VALUES ($1, $2, $4::jsonb) RETURNING run_id),
         woken AS (
           UPDATE ${this.db.s}.runs SET signal_count = signal_count + 1, updated_at = now(),
             available_at = CASE WHEN status = 'waiting' AND $2 = ANY(waits_for) THEN now() ELSE available_at END
           WHERE id = $1 RETURNING status = 'waiting' AND $2 = ANY(waits_for) AS due)
         SELECT pg_notify($3, 'run') FROM woken WHERE due`,
        [runId, name, this.db.channel, payload],
        manager,
      );
      return { status: run.status };
    });
  }

  /**
   * Cancels a run and its unfinished descendants: marks them cancelled (which fences their executors)
   * and notifies, so waiters reject and owners abort the step in flight. A cancelled child whose parent
   * goes on (it was not cancelled with it) fails the parent's step that waits for it. Returns the runs
   * cancelled.
   */
  async cancelRuns(
    runId: string,
    error: string,
  ): Promise<{ id: string; workflow: string; version: string }[]> {
    const tree = `WITH RECURSIVE tree AS (
         SELECT id FROM ${this.db.s}.runs WHERE id = $1
         UNION ALL
         SELECT r.id FROM ${this.db.s}.runs r JOIN tree t ON r.parent_id = t.id)`;
    return this.transaction(async (manager) => {
      // Lock first: a checkpoint committing meanwhile is then visible to the next statement's
      // snapshot, and none can commit after (checkpoints share-lock the run row, then find it fenced).
      await this.db.query(
        `${tree} SELECT id FROM ${this.db.s}.runs WHERE id IN (SELECT id FROM tree)
           AND status NOT IN ('succeeded', 'failed', 'cancelled') ORDER BY id FOR UPDATE`,
        [runId],
        manager,
      );
      const { rows } = await this.db.query<{ id: string; workflow: string; version: string }>(
        `${tree},
         cancelled AS (
           UPDATE ${this.db.s}.runs SET status = 'cancelled', error = $2::jsonb, executor = NULL,
             epoch = epoch + 1, available_at = now(), updated_at = now(), waits_for = NULL,
             compensating = EXISTS (SELECT 1 FROM ${this.db.s}.steps s
               WHERE s.run_id = runs.id AND s.undo_args IS NOT NULL AND s.status = 'succeeded')
           WHERE id IN (SELECT id FROM tree) AND status NOT IN ('succeeded', 'failed', 'cancelled')
           RETURNING id, workflow, version, parent_id, parent_step, compensating),
         finished AS (
           SELECT id, parent_id,
             CASE WHEN parent_id IN (SELECT id FROM cancelled) THEN NULL ELSE parent_step END AS parent_step
           FROM cancelled),
         ${childOutcomeSql(this.db.s, { status: "'cancelled'", output: 'NULL::jsonb', error: '$2::jsonb' })}
         SELECT c.id, c.workflow, c.version, pg_notify($3, 'done:' || c.id),
           CASE WHEN c.compensating THEN pg_notify($3, 'run') END,
           (SELECT count(*) FROM (SELECT pg_notify($3, 'run') FROM woken WHERE woken.due) n) AS woken
         FROM cancelled c`,
        [runId, error, this.db.channel],
        manager,
      );
      return rows.map(({ id, workflow, version }) => ({ id, workflow, version }));
    });
  }

  /**
   * Puts a failed or cancelled run back in the queue, with the failed or cancelled runs it depends on:
   * its cancelled descendants, and the child run whose failure failed it. The step that failed a run
   * executes again with a fresh retry budget, its record kept (status `retrying`, attempts and last
   * error); a failed child step waits for its resumed child again. Nothing recorded is deleted: every
   * other outcome replays as recorded. Refused (`compensated`) for a run whose compensations ran.
   */
  async resumeRun(runId: string): Promise<ResumeOutcome> {
    return this.transaction(async (manager) => {
      const queue = [runId];
      const resumed: string[] = [];
      let first: RunStatus | undefined;
      while (queue.length > 0) {
        const id = queue.shift()!;
        const { rows } = await this.db.query<{
          status: RunStatus;
          failed_step: string | null;
          compensated: boolean;
          child_step: boolean;
        }>(
          `SELECT r.status, r.failed_step,
             r.compensating OR EXISTS (SELECT 1 FROM ${this.db.s}.steps s WHERE s.run_id = r.id AND s.name LIKE '$undo:%')
               AS compensated,
             EXISTS (SELECT 1 FROM ${this.db.s}.steps s WHERE s.run_id = r.id AND s.key = r.failed_step AND s.kind = 'child')
               AS child_step
           FROM ${this.db.s}.runs r WHERE r.id = $1 FOR UPDATE`,
          [id],
          manager,
        );
        const run = rows[0];
        if (id === runId) first = run?.status;
        if (!run || (run.status !== 'failed' && run.status !== 'cancelled')) {
          if (id === runId) return { status: run?.status };
          continue;
        }
        if (run.compensated) return { status: first, compensated: id };
        if (run.failed_step !== null) {
          await this.db.query(
            `UPDATE ${this.db.s}.steps SET
               status = CASE WHEN kind = 'child' THEN 'waiting' ELSE 'retrying' END,
               attempts_base = attempts, finished_at = NULL
             WHERE run_id = $1 AND key = $2 AND status = 'failed'`,
            [id, run.failed_step],
            manager,
          );
          if (run.child_step) queue.push(`${id}:${run.failed_step}`);
        }
        const { rows: descendants } = await this.db.query<{ id: string }>(
          `SELECT id FROM ${this.db.s}.runs WHERE parent_id = $1 AND status = 'cancelled'`,
          [id],
          manager,
        );
        queue.push(...descendants.map((row) => row.id));
        resumed.push(id);
      }
      await this.db.query(
        `WITH resumed AS (
           UPDATE ${this.db.s}.runs SET status = 'pending', error = NULL, failed_step = NULL, executor = NULL,
             compensating = false, waits_for = NULL, stalls = 0, available_at = now(), updated_at = now(),
             admitted_at = NULL,
             deadline = CASE WHEN deadline <= now() THEN NULL ELSE deadline END
           WHERE id = ANY($1::text[]) AND status IN ('failed', 'cancelled')
           RETURNING id)
         SELECT pg_notify($2, 'run') FROM resumed LIMIT 1`,
        [resumed, this.db.channel],
        manager,
      );
      return { status: first };
    });
  }

  /** A transaction retried on deadlocks and serialization failures (it wrote nothing when they happen). */
  private async transaction<T>(fn: (manager: EntityManager) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.db.transaction(fn);
      } catch (error) {
        const code = (error as { code?: string })?.code;
        const conflict = code === '40P01' || code === '40001';
        if (!conflict || !isTransient(error) || attempt >= CONTROL_ATTEMPTS) throw error;
      }
    }
  }
}

export interface SignalLimits {
  maxPending: number;
  maxBytes: number;
}

export interface SignalSent {
  /** The run's status before the signal (undefined: no such run). */
  status?: RunStatus;
  /** Set when a limit refused the signal. */
  limit?: 'signals' | 'bytes';
}

export interface ResumeOutcome {
  /** The run's status before the resume (undefined: no such run). */
  status?: RunStatus;
  /** Set when the resume was refused because this run's compensations ran. */
  compensated?: string;
}
