import type { MigrationInterface, QueryRunner } from 'typeorm';

/** SQL of the schedules migration for a schema (validated by the caller). */
export function createSchedulesTableSql(schema: string): string[] {
  const s = `"${schema}"`;
  return [
    `SELECT pg_advisory_xact_lock(hashtext('durable-migrations:${schema}'))`,
    // One row per cron schedule, from @Schedule or client.schedules.create. next_tick_at is the first
    // tick not handled yet (NULL: computed by the next sweep from active_since); deferred holds ticks
    // waiting for the previous run to finish (overlap 'queue').
    `CREATE TABLE IF NOT EXISTS ${s}.schedules (
      name text PRIMARY KEY,
      workflow text NOT NULL,
      cron text NOT NULL,
      timezone text,
      overlap text NOT NULL CHECK (overlap IN ('skip','allow','queue')),
      catch_up text NOT NULL CHECK (catch_up IN ('none','latest','all')),
      missed_after_ms bigint NOT NULL,
      args jsonb NOT NULL DEFAULT '[]',
      source text NOT NULL CHECK (source IN ('decorator','client')),
      paused boolean NOT NULL DEFAULT false,
      active_since timestamptz NOT NULL DEFAULT now(),
      next_tick_at timestamptz,
      last_run_id text,
      deferred timestamptz[] NOT NULL DEFAULT '{}',
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    )`,
  ];
}

/** Builds the schedules migration class for a schema. */
export function createSchedulesTableMigration(schema: string): new () => MigrationInterface {
  return class CreateDurableSchedules implements MigrationInterface {
    readonly name = `DurableCreateSchedules_${schema}1765300000000`;

    async up(queryRunner: QueryRunner): Promise<void> {
      for (const statement of createSchedulesTableSql(schema)) await queryRunner.query(statement);
    }

    async down(queryRunner: QueryRunner): Promise<void> {
      await queryRunner.query(`DROP TABLE IF EXISTS "${schema}".schedules`);
    }
  };
}
