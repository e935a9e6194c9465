import type { MigrationInterface, QueryRunner } from 'typeorm';
import { migrationLockSql } from './migration-lock';

/**
 * SQL of the library's second migration: claims shaped for the (workflow, version) pairs a process
 * serves, poison-run accounting, parents waiting on several children or signals at once, and resumed
 * steps that keep their attempt record. Every statement is idempotent and none rewrites a table.
 */
export function engineRecoverySql(schema: string): string[] {
  const s = `"${schema}"`;
  return [
    migrationLockSql(schema),
    // Claims since the run last made progress (a new step, a park, a finish); past the limit the run
    // is set aside instead of executed again.
    `ALTER TABLE ${s}.runs ADD COLUMN IF NOT EXISTS stalls integer NOT NULL DEFAULT 0`,
    // The step key of the parent that waits for this run (child runs only): the child's finish writes
    // its outcome into that step, in the finish's own statement.
    `ALTER TABLE ${s}.runs ADD COLUMN IF NOT EXISTS parent_step text`,
    // What a parked run waits for: signal names, and '$child:<id>' for child runs.
    `ALTER TABLE ${s}.runs ADD COLUMN IF NOT EXISTS waits_for text[]`,
    // Attempts recorded before the step was resumed: the retry policy counts from there.
    `ALTER TABLE ${s}.steps ADD COLUMN IF NOT EXISTS attempts_base integer NOT NULL DEFAULT 0`,
    // The claim reads, per served (workflow, version), its oldest due runs: runs of versions this
    // process does not serve cost nothing. (On a large existing table, create it CONCURRENTLY by hand
    // first, with this name, to avoid blocking writes while it builds.)
    `CREATE INDEX IF NOT EXISTS runs_claim_idx ON ${s}.runs (workflow, version, available_at)
       WHERE status IN ('pending','sleeping','waiting') OR (compensating AND executor IS NULL)`,
  ];
}

/** Builds the migration class for a schema; the name carries the schema so several can coexist. */
export function engineRecoveryMigration(schema: string): new () => MigrationInterface {
  return class DurableEngineRecovery implements MigrationInterface {
    readonly name = `DurableEngineRecovery_${schema}1765000000000`;

    async up(queryRunner: QueryRunner): Promise<void> {
      for (const statement of engineRecoverySql(schema)) await queryRunner.query(statement);
    }

    async down(queryRunner: QueryRunner): Promise<void> {
      const s = `"${schema}"`;
      await queryRunner.query(`DROP INDEX IF EXISTS ${s}.runs_claim_idx`);
      await queryRunner.query(`ALTER TABLE ${s}.steps DROP COLUMN IF EXISTS attempts_base`);
      for (const column of ['waits_for', 'parent_step', 'stalls'])
        await queryRunner.query(`ALTER TABLE ${s}.runs DROP COLUMN IF EXISTS ${column}`);
    }
  };
}
