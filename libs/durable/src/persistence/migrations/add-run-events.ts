import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * SQL of the observability migration: the trace context each run keeps from the code that started it,
 * and the runs' event streams (Durable.setEvent). Idempotent, and serialized with the other migrations
 * of the schema by the same advisory lock.
 */
export function addRunEventsSql(schema: string): string[] {
  const s = `"${schema}"`;
  return [
    `SELECT pg_advisory_xact_lock(hashtext('durable-migrations:${schema}'))`,
    // W3C trace context (JSON: traceparent, tracestate) captured by start(); null without tracing.
    `ALTER TABLE ${s}.runs ADD COLUMN IF NOT EXISTS trace_context text`,
    // One row per Durable.setEvent, numbered per run (1, 2, ...): the run's event stream. The latest
    // row of a key is its value.
    `CREATE TABLE IF NOT EXISTS ${s}.run_events (
      run_id text NOT NULL,
      seq integer NOT NULL,
      key text NOT NULL,
      value jsonb NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (run_id, seq)
    )`,
    `CREATE INDEX IF NOT EXISTS run_events_key_idx ON ${s}.run_events (run_id, key, seq DESC)`,
  ];
}

/** Builds the migration class for a schema (the name carries the schema so several can coexist). */
export function addRunEventsMigration(schema: string): new () => MigrationInterface {
  return class AddRunEvents implements MigrationInterface {
    readonly name = `DurableAddRunEvents_${schema}1765100000000`;

    async up(queryRunner: QueryRunner): Promise<void> {
      for (const statement of addRunEventsSql(schema)) await queryRunner.query(statement);
    }

    async down(queryRunner: QueryRunner): Promise<void> {
      await queryRunner.query(`DROP TABLE IF EXISTS "${schema}".run_events`);
      await queryRunner.query(`ALTER TABLE "${schema}".runs DROP COLUMN IF EXISTS trace_context`);
    }
  };
}
