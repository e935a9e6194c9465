import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * SQL of the migration that indexes the admin filters (validated schema). Each list filter the
 * dashboard and the CLI offer is served by an index, so a page costs a bounded index scan even with
 * millions of runs:
 * - id prefix: a `text_pattern_ops` index (LIKE 'prefix%' whatever the database collation);
 * - workflow and version: (workflow, version, created_at, id) replaces (workflow, created_at, id),
 *   which it also serves, so a run write maintains no more indexes than before for it;
 * - text in the error: the errored runs only, newest first (a partial index), scanned with ILIKE.
 * Status and time range use the first migration's indexes; retention reads (status, created_at).
 */
export function addAdminIndexesSql(schema: string): string[] {
  const s = `"${schema}"`;
  return [
    `SELECT pg_advisory_xact_lock(hashtext('durable-migrations:${schema}'))`,
    `CREATE INDEX IF NOT EXISTS runs_id_prefix_idx ON ${s}.runs (id text_pattern_ops)`,
    `CREATE INDEX IF NOT EXISTS runs_workflow_version_created_idx
       ON ${s}.runs (workflow, version, created_at DESC, id DESC)`,
    `DROP INDEX IF EXISTS ${s}.runs_workflow_created_idx`,
    `CREATE INDEX IF NOT EXISTS runs_errored_created_idx ON ${s}.runs (created_at DESC, id DESC)
       WHERE error IS NOT NULL`,
  ];
}

/** Builds the admin-indexes migration class for a schema. */
export function addAdminIndexesMigration(schema: string): new () => MigrationInterface {
  return class AddAdminIndexes implements MigrationInterface {
    readonly name = `DurableAdminIndexes_${schema}1765200000000`;

    async up(queryRunner: QueryRunner): Promise<void> {
      for (const statement of addAdminIndexesSql(schema)) await queryRunner.query(statement);
    }

    async down(queryRunner: QueryRunner): Promise<void> {
      const s = `"${schema}"`;
      await queryRunner.query(
        `CREATE INDEX IF NOT EXISTS runs_workflow_created_idx ON ${s}.runs (workflow, created_at DESC, id DESC)`,
      );
      for (const index of [
        'runs_id_prefix_idx',
        'runs_workflow_version_created_idx',
        'runs_errored_created_idx',
      ])
        await queryRunner.query(`DROP INDEX IF EXISTS ${s}.${index}`);
    }
  };
}
