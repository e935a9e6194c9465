import { Injectable } from '@nestjs/common';
import type { PoolClient } from 'pg';
import { DurableDatabase } from '../persistence/durable.database';
import type { FinishedStatus } from './retention.options';

/** Where a purge stops: runs that finished before this Date, or more than `ageMs` ago (database clock). */
export type PurgeCutoff = { before: Date } | { ageMs: number };

/**
 * The deletes of retention, each a bounded batch in its own short statement: rows are picked with
 * SKIP LOCKED (a run being resumed or signalled is left for the next pass) and deleted with their steps
 * and signals in the same statement.
 */
@Injectable()
export class RetentionStore {
  constructor(private readonly db: DurableDatabase) {}

  /**
   * Deletes up to `limit` runs of `status` finished before the cutoff (created and last updated before
   * it, read on the (status, created_at) index), with their steps, signals and events. A child run whose parent
   * has not finished is kept: the parent may still need it. Returns how many runs were deleted.
   */
  async purgeBatch(status: FinishedStatus, cutoff: PurgeCutoff, limit: number): Promise<number> {
    const s = this.db.s;
    const { rowCount } = await this.db.query(
      `WITH cutoff AS (
         SELECT COALESCE($2::timestamptz, now() - $3::bigint * interval '1 millisecond') AS at),
       doomed AS (
         SELECT r.id FROM ${s}.runs r, cutoff
         WHERE r.status = $1 AND r.created_at < cutoff.at AND r.updated_at < cutoff.at AND NOT r.compensating
           AND (r.parent_id IS NULL OR NOT EXISTS (SELECT 1 FROM ${s}.runs p
                WHERE p.id = r.parent_id AND p.status NOT IN ('succeeded', 'failed', 'cancelled')))
         LIMIT $4
         FOR UPDATE OF r SKIP LOCKED),
       steps_deleted AS (DELETE FROM ${s}.steps WHERE run_id IN (SELECT id FROM doomed)),
       signals_deleted AS (DELETE FROM ${s}.signals WHERE run_id IN (SELECT id FROM doomed)),
       events_deleted AS (DELETE FROM ${s}.run_events WHERE run_id IN (SELECT id FROM doomed))
       DELETE FROM ${s}.runs WHERE id IN (SELECT id FROM doomed)`,
      [status, 'before' in cutoff ? cutoff.before : null, 'ageMs' in cutoff ? cutoff.ageMs : null, limit],
    );
    return rowCount;
  }

  /** Deletes up to `limit` executor rows whose heartbeat is older than `ageMs`. */
  async purgeExecutors(ageMs: number, limit: number): Promise<number> {
    const { rowCount } = await this.db.query(
      `DELETE FROM ${this.db.s}.executors WHERE id IN (
         SELECT id FROM ${this.db.s}.executors WHERE heartbeat_at < now() - $1::bigint * interval '1 millisecond'
         LIMIT $2 FOR UPDATE SKIP LOCKED)`,
      [ageMs, limit],
    );
    return rowCount;
  }

  /**
   * Runs `pass` while holding the schema's retention lock (a session advisory lock on a connection of
   * its own), so one replica at a time purges; returns undefined without running it when another holds it.
   */
  async withRetentionLock<T>(schema: string, pass: () => Promise<T>): Promise<T | undefined> {
    const client: PoolClient = await this.db.pool.connect();
    const key = `durable-retention:${schema}`;
    let locked = false;
    let broken = false;
    try {
      const { rows } = await client.query<{ locked: boolean }>(
        'SELECT pg_try_advisory_lock(hashtext($1)) AS locked',
        [key],
      );
      locked = rows[0].locked;
      if (!locked) return undefined;
      return await pass();
    } catch (error) {
      broken = !locked;
      throw error;
    } finally {
      if (locked) {
        // A connection that cannot unlock is destroyed, which ends its session and so the lock.
        await client.query('SELECT pg_advisory_unlock(hashtext($1))', [key]).catch(() => (broken = true));
      }
      client.release(broken);
    }
  }
}
