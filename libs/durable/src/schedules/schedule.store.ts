import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { DurableDatabase } from '../persistence/durable.database';
import type { ScheduleDefinition } from './schedule-definition';
import type { ScheduleCatchUp, ScheduleOverlap } from './schedule.interfaces';

/** A schedules row as pg returns it. */
export interface ScheduleRow {
  name: string;
  workflow: string;
  cron: string;
  timezone: string | null;
  overlap: ScheduleOverlap;
  catch_up: ScheduleCatchUp;
  missed_after_ms: string;
  args: unknown[];
  source: 'decorator' | 'client';
  paused: boolean;
  active_since: Date;
  next_tick_at: Date | null;
  last_run_id: string | null;
  deferred: Date[];
  created_at: Date;
  updated_at: Date;
}

/** A due schedule, locked for this sweep, with the database's time and its last run's status. */
export interface DueSchedule extends ScheduleRow {
  db_now: Date;
  last_run_status: string | null;
}

const COLUMNS = `name, workflow, cron, timezone, overlap, catch_up, missed_after_ms, args, source, paused,
  active_since, next_tick_at, last_run_id, deferred, created_at, updated_at`;

/** The schedules table: one statement per operation. */
@Injectable()
export class ScheduleStore {
  private readonly s: string;

  constructor(private readonly db: DurableDatabase) {
    this.s = db.s;
  }

  /**
   * Stores the @Schedule declarations of this process (a changed cron or time zone restarts the
   * schedule from now) and deletes declared schedules of its workflows that the code no longer has.
   */
  async syncDeclared(definitions: ScheduleDefinition[], workflows: string[]): Promise<void> {
    await this.db.query(
      `WITH declared AS (
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[])
           AS d(name, workflow, cron, timezone, overlap, catch_up, missed_after_ms)),
       removed AS (
         DELETE FROM ${this.s}.schedules WHERE source = 'decorator' AND workflow = ANY($8::text[])
           AND name NOT IN (SELECT name FROM declared))
       INSERT INTO ${this.s}.schedules AS s (name, workflow, cron, timezone, overlap, catch_up, missed_after_ms, source)
       SELECT name, workflow, cron, timezone, overlap, catch_up, missed_after_ms, 'decorator' FROM declared
       ON CONFLICT (name) DO UPDATE SET workflow = EXCLUDED.workflow, cron = EXCLUDED.cron,
         timezone = EXCLUDED.timezone, overlap = EXCLUDED.overlap, catch_up = EXCLUDED.catch_up,
         missed_after_ms = EXCLUDED.missed_after_ms, source = 'decorator', args = '[]', updated_at = now(),
         next_tick_at = CASE WHEN (s.cron, s.timezone) IS NOT DISTINCT FROM (EXCLUDED.cron, EXCLUDED.timezone)
           THEN s.next_tick_at END,
         active_since = CASE WHEN (s.cron, s.timezone) IS NOT DISTINCT FROM (EXCLUDED.cron, EXCLUDED.timezone)
           THEN s.active_since ELSE now() END
       WHERE (s.workflow, s.cron, s.timezone, s.overlap, s.catch_up, s.missed_after_ms, s.source)
         IS DISTINCT FROM (EXCLUDED.workflow, EXCLUDED.cron, EXCLUDED.timezone, EXCLUDED.overlap,
           EXCLUDED.catch_up, EXCLUDED.missed_after_ms, 'decorator')`,
      [
        definitions.map((d) => d.name),
        definitions.map((d) => d.workflow),
        definitions.map((d) => d.cron),
        definitions.map((d) => d.timezone),
        definitions.map((d) => d.overlap),
        definitions.map((d) => d.catchUp),
        definitions.map((d) => d.missedAfterMs),
        workflows,
      ],
    );
  }

  /** Inserts a schedule made at run time; false when the name is taken. */
  async create(definition: ScheduleDefinition, args: string): Promise<ScheduleRow | undefined> {
    const { rows } = await this.db.query<ScheduleRow>(
      `INSERT INTO ${this.s}.schedules (name, workflow, cron, timezone, overlap, catch_up, missed_after_ms, args, source)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, 'client')
       ON CONFLICT (name) DO NOTHING RETURNING ${COLUMNS}`,
      [
        definition.name,
        definition.workflow,
        definition.cron,
        definition.timezone,
        definition.overlap,
        definition.catchUp,
        definition.missedAfterMs,
        args,
      ],
    );
    return rows[0];
  }

  /** Pauses or resumes; a resumed schedule fires from now on (ticks during the pause are not caught up). */
  async setPaused(name: string, paused: boolean): Promise<boolean> {
    const { rowCount } = await this.db.query(
      `UPDATE ${this.s}.schedules SET updated_at = now(),
         next_tick_at = CASE WHEN paused AND NOT $2 THEN NULL ELSE next_tick_at END,
         active_since = CASE WHEN paused AND NOT $2 THEN now() ELSE active_since END,
         deferred = CASE WHEN paused AND NOT $2 THEN '{}' ELSE deferred END,
         paused = $2
       WHERE name = $1`,
      [name, paused],
    );
    return rowCount === 1;
  }

  async delete(name: string): Promise<boolean> {
    const { rowCount } = await this.db.query(`DELETE FROM ${this.s}.schedules WHERE name = $1`, [name]);
    return rowCount === 1;
  }

  async get(name: string): Promise<ScheduleRow | undefined> {
    const { rows } = await this.db.query<ScheduleRow>(
      `SELECT ${COLUMNS} FROM ${this.s}.schedules WHERE name = $1`,
      [name],
    );
    return rows[0];
  }

  async list(): Promise<ScheduleRow[]> {
    const { rows } = await this.db.query<ScheduleRow>(
      `SELECT ${COLUMNS} FROM ${this.s}.schedules ORDER BY name`,
      [],
    );
    return rows;
  }

  /**
   * Without locking anything: whether a schedule of these workflows has work now, and how long until
   * the earliest next tick (null: none known).
   */
  async probe(workflows: string[]): Promise<{ due: boolean; waitMs: number | null }> {
    const { rows } = await this.db.query<{ due: boolean | null; wait_ms: number | null }>(
      `SELECT bool_or(next_tick_at IS NULL OR next_tick_at <= now() OR cardinality(deferred) > 0) AS due,
         EXTRACT(EPOCH FROM min(next_tick_at) - now())::float8 * 1000 AS wait_ms
       FROM ${this.s}.schedules WHERE NOT paused AND workflow = ANY($1::text[])`,
      [workflows],
    );
    return { due: rows[0]?.due === true, waitMs: rows[0]?.wait_ms ?? null };
  }

  /** Locks the schedules of these workflows that have work now (another replica skips them). */
  async lockDue(manager: EntityManager, workflows: string[], limit: number): Promise<DueSchedule[]> {
    const { rows } = await this.db.query<DueSchedule>(
      `SELECT s.*, now() AS db_now, r.status AS last_run_status
       FROM ${this.s}.schedules s LEFT JOIN ${this.s}.runs r ON r.id = s.last_run_id
       WHERE NOT s.paused AND s.workflow = ANY($1::text[])
         AND (s.next_tick_at IS NULL OR s.next_tick_at <= now() OR cardinality(s.deferred) > 0)
       ORDER BY s.next_tick_at NULLS FIRST
       LIMIT $2
       FOR UPDATE OF s SKIP LOCKED`,
      [workflows, limit],
      manager,
    );
    return rows;
  }

  /** Records what a sweep did with a locked schedule. */
  async advance(
    manager: EntityManager,
    name: string,
    state: { nextTickAt: Date | null; lastRunId: string | null; deferred: Date[] },
  ): Promise<void> {
    await this.db.query(
      `UPDATE ${this.s}.schedules SET next_tick_at = $2, last_run_id = $3, deferred = $4::timestamptz[],
         updated_at = now()
       WHERE name = $1`,
      [
        name,
        state.nextTickAt?.toISOString() ?? null,
        state.lastRunId,
        state.deferred.map((d) => d.toISOString()),
      ],
      manager,
    );
  }
}
