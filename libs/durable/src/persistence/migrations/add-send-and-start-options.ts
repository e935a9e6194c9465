import type { MigrationInterface, QueryRunner } from 'typeorm';

/** SQL of the migration for messages (idempotent sends) and start options (dedup keys). */
export function addSendAndStartOptionsSql(schema: string): string[] {
  const s = `"${schema}"`;
  return [
    `SELECT pg_advisory_xact_lock(hashtext('durable-migrations:${schema}'))`,
    // client.send / Durable.send: a message with an idempotency key is stored once per run.
    `ALTER TABLE ${s}.signals ADD COLUMN IF NOT EXISTS idempotency_key text`,
    `CREATE UNIQUE INDEX IF NOT EXISTS signals_idempotency_idx ON ${s}.signals (run_id, idempotency_key)
       WHERE idempotency_key IS NOT NULL`,
    // start({ dedupKey }): at most one unfinished run of a workflow per key.
    `ALTER TABLE ${s}.runs ADD COLUMN IF NOT EXISTS dedup_key text`,
    `CREATE UNIQUE INDEX IF NOT EXISTS runs_dedup_idx ON ${s}.runs (workflow, dedup_key)
       WHERE dedup_key IS NOT NULL AND status IN ('pending','running','sleeping','waiting')`,
  ];
}

/** Builds the migration class for a schema. */
export function addSendAndStartOptionsMigration(schema: string): new () => MigrationInterface {
  return class AddDurableSendAndStartOptions implements MigrationInterface {
    readonly name = `DurableSendAndStartOptions_${schema}1765300000100`;

    async up(queryRunner: QueryRunner): Promise<void> {
      for (const statement of addSendAndStartOptionsSql(schema)) await queryRunner.query(statement);
    }

    async down(queryRunner: QueryRunner): Promise<void> {
      await queryRunner.query(`DROP INDEX IF EXISTS "${schema}".runs_dedup_idx`);
      await queryRunner.query(`ALTER TABLE "${schema}".runs DROP COLUMN IF EXISTS dedup_key`);
      await queryRunner.query(`DROP INDEX IF EXISTS "${schema}".signals_idempotency_idx`);
      await queryRunner.query(`ALTER TABLE "${schema}".signals DROP COLUMN IF EXISTS idempotency_key`);
    }
  };
}
