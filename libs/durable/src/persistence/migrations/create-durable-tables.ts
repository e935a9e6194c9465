import type { MigrationInterface, QueryRunner } from 'typeorm';
import { migrationLockSql } from './migration-lock';

/** SQL of the library's first migration for a schema (validated by the caller). */
export function createDurableTablesSql(schema: string): string[] {
  const s = `"${schema}"`;
  return [
    migrationLockSql(schema),
    `CREATE SCHEMA IF NOT EXISTS ${s}`,
    `CREATE TABLE IF NOT EXISTS ${s}.runs (
      id text PRIMARY KEY,
      workflow text NOT NULL,
      version text NOT NULL,
      status text NOT NULL CHECK (status IN ('pending','running','sleeping','waiting','succeeded','failed','cancelled')),
      input jsonb NOT NULL,
      output jsonb,
      error jsonb,
      failed_step text,
      executor text,
      epoch integer NOT NULL DEFAULT 0,
      claimed_at timestamptz,
      attempts integer NOT NULL DEFAULT 0,
      available_at timestamptz NOT NULL DEFAULT now(),
      deadline timestamptz,
      parent_id text,
      signal_count integer NOT NULL DEFAULT 0,
      waiting_for text,
      compensating boolean NOT NULL DEFAULT false,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    )`,
    // Claimable runs (and cancelled runs whose compensations are due), oldest due first; the only
    // index the claim query reads.
    `CREATE INDEX IF NOT EXISTS runs_ready_idx ON ${s}.runs (available_at)
       WHERE status IN ('pending','sleeping','waiting') OR (compensating AND executor IS NULL)`,
    // Runs in flight per executor: the orphan sweep and shutdown release read only these.
    `CREATE INDEX IF NOT EXISTS runs_owner_idx ON ${s}.runs (executor) WHERE status = 'running' OR compensating`,
    `CREATE INDEX IF NOT EXISTS runs_created_idx ON ${s}.runs (created_at DESC, id DESC)`,
    `CREATE INDEX IF NOT EXISTS runs_status_created_idx ON ${s}.runs (status, created_at DESC, id DESC)`,
    `CREATE INDEX IF NOT EXISTS runs_workflow_created_idx ON ${s}.runs (workflow, created_at DESC, id DESC)`,
    `CREATE INDEX IF NOT EXISTS runs_parent_idx ON ${s}.runs (parent_id) WHERE parent_id IS NOT NULL`,
    // No foreign key to runs: every step write already locks its run row for the fencing check.
    `CREATE TABLE IF NOT EXISTS ${s}.steps (
      run_id text NOT NULL,
      key text NOT NULL,
      name text NOT NULL,
      kind text NOT NULL CHECK (kind IN ('step','sleep','signal','child')),
      status text NOT NULL CHECK (status IN ('succeeded','failed','retrying','waiting')),
      output jsonb,
      error jsonb,
      attempts integer NOT NULL DEFAULT 1,
      started_at timestamptz NOT NULL,
      finished_at timestamptz,
      undo_args jsonb,
      seq bigint GENERATED ALWAYS AS IDENTITY,
      PRIMARY KEY (run_id, key)
    )`,
    `CREATE TABLE IF NOT EXISTS ${s}.signals (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      run_id text NOT NULL,
      name text NOT NULL,
      payload jsonb,
      sent_at timestamptz NOT NULL DEFAULT now(),
      consumed_by text
    )`,
    `CREATE INDEX IF NOT EXISTS signals_unconsumed_idx ON ${s}.signals (run_id, name, id) WHERE consumed_by IS NULL`,
    `CREATE TABLE IF NOT EXISTS ${s}.executors (
      id text PRIMARY KEY,
      heartbeat_at timestamptz NOT NULL,
      started_at timestamptz NOT NULL DEFAULT now()
    )`,
  ];
}

/** Builds the migration class for a schema; the name carries the schema so several can coexist. */
export function createDurableTablesMigration(schema: string): new () => MigrationInterface {
  return class CreateDurableTables implements MigrationInterface {
    readonly name = `DurableCreateTables_${schema}1764000000000`;

    async up(queryRunner: QueryRunner): Promise<void> {
      for (const statement of createDurableTablesSql(schema)) await queryRunner.query(statement);
    }

    async down(queryRunner: QueryRunner): Promise<void> {
      await queryRunner.query(`DROP SCHEMA "${schema}" CASCADE`);
    }
  };
}
