import { Injectable } from '@nestjs/common';
import { isFinished, RunStatus } from '../interfaces';
import { DurableDatabase } from './durable.database';

/**
 * Operations from outside a run: signals, cancel and resume. Each locks the run row first, so it
 * serializes with the run's own checkpoints and parks.
 */
@Injectable()
export class RunControlStore {
  constructor(private readonly db: DurableDatabase) {}

  /**
   * Stores a signal for a run that has not finished and wakes the run if it is parked waiting. The run
   * row is locked first, so a concurrent park either sees the signal or sees the counter move.
   */
  async sendSignal(runId: string, name: string, payload: string): Promise<RunStatus | undefined> {
    return this.db.transaction(async (manager) => {
      const { rows } = await this.db.query<{ status: RunStatus }>(
        `SELECT status FROM ${this.db.s}.runs WHERE id = $1 FOR UPDATE`,
        [runId],
        manager,
      );
      const status = rows[0]?.status;
      if (!status || isFinished(status)) return status;
      await this.db.query(
        `INSERT INTO ${this.db.s}.signals (run_id, name, payload) VALUES ($1, $2, $3::jsonb)`,
        [runId, name, payload],
        manager,
      );
      await this.db.query(
        `WITH woken AS (
           UPDATE ${this.db.s}.runs SET signal_count = signal_count + 1, updated_at = now(),
             available_at = CASE WHEN status = 'waiting' AND waiting_for = $3 THEN now() ELSE available_at END
           WHERE id = $1 RETURNING status, waiting_for)
         SELECT pg_notify($2, 'run') FROM woken WHERE status = 'waiting' AND waiting_for = $3`,
        [runId, this.db.channel, name],
        manager,
      );
      return status;
    });
  }
  /**
   * Cancels a run and its unfinished descendants: marks them cancelled (which fences their executors)
   * and notifies, so waiters reject and owners abort the step in flight. Returns the runs cancelled.
   */
  async cancelRuns(
    runId: string,
    error: string,
  ): Promise<{ id: string; workflow: string; version: string }[]> {
    const tree = `WITH RECURSIVE tree AS (
         SELECT id FROM ${this.db.s}.runs WHERE id = $1
         UNION ALL
         SELECT r.id FROM ${this.db.s}.runs r JOIN tree t ON r.parent_id = t.id)`;
    return this.db.transaction(async (manager) => {
      // Lock first: a checkpoint committing meanwhile is then visible to the next statement's
      // snapshot, and none can commit after (checkpoints share-lock the run row, then find it fenced).
      await this.db.query(
        `${tree} SELECT id FROM ${this.db.s}.runs WHERE id IN (SELECT id FROM tree)
           AND status NOT IN ('succeeded', 'failed', 'cancelled') FOR UPDATE`,
        [runId],
        manager,
      );
      const { rows } = await this.db.query<{ id: string; workflow: string; version: string }>(
        `${tree},
         cancelled AS (
           UPDATE ${this.db.s}.runs SET status = 'cancelled', error = $2::jsonb, executor = NULL,
             epoch = epoch + 1, available_at = now(), updated_at = now(),
             compensating = EXISTS (SELECT 1 FROM ${this.db.s}.steps s
               WHERE s.run_id = runs.id AND s.undo_args IS NOT NULL AND s.status = 'succeeded')
           WHERE id IN (SELECT id FROM tree) AND status NOT IN ('succeeded', 'failed', 'cancelled')
           RETURNING id, workflow, version, compensating)
         SELECT id, workflow, version, pg_notify($3, 'done:' || id), CASE WHEN compensating THEN pg_notify($3, 'run') END
         FROM cancelled`,
        [runId, error, this.db.channel],
        manager,
      );
      return rows.map(({ id, workflow, version }) => ({ id, workflow, version }));
    });
  }
  /**
   * Puts a failed or cancelled run (and its cancelled descendants) back in the queue. The step that
   * failed the run and every step recorded after it are forgotten, so they execute again.
   */
  async resumeRun(runId: string): Promise<RunStatus | undefined> {
    return this.db.transaction(async (manager) => {
      const { rows } = await this.db.query<{ status: RunStatus; failed_step: string | null }>(
        `SELECT status, failed_step FROM ${this.db.s}.runs WHERE id = $1 FOR UPDATE`,
        [runId],
        manager,
      );
      const run = rows[0];
      if (!run || (run.status !== 'failed' && run.status !== 'cancelled')) return run?.status;
      if (run.failed_step !== null) {
        await this.db.query(
          `DELETE FROM ${this.db.s}.steps WHERE run_id = $1 AND (started_at, seq) >= (
             SELECT started_at, seq FROM ${this.db.s}.steps WHERE run_id = $1 AND key = $2)`,
          [runId, run.failed_step],
          manager,
        );
      }
      await this.db.query(
        `WITH RECURSIVE tree AS (
           SELECT id FROM ${this.db.s}.runs WHERE id = $1
           UNION ALL
           SELECT r.id FROM ${this.db.s}.runs r JOIN tree t ON r.parent_id = t.id WHERE r.status = 'cancelled'),
         resumed AS (
           UPDATE ${this.db.s}.runs SET status = 'pending', error = NULL, failed_step = NULL, executor = NULL,
             compensating = false,
             available_at = now(), updated_at = now(),
             deadline = CASE WHEN deadline <= now() THEN NULL ELSE deadline END
           WHERE id IN (SELECT id FROM tree) AND status IN ('failed', 'cancelled')
           RETURNING id)
         SELECT pg_notify($2, 'run') FROM resumed LIMIT 1`,
        [runId, this.db.channel],
        manager,
      );
      return run.status;
    });
  }
}
