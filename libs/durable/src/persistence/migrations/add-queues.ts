import type { MigrationInterface, QueryRunner } from 'typeorm';
import { migrationLockSql } from './migration-lock';

/** Runs the claim reads through runs_claim_idx: unqueued runs, and queued runs that hold their slot. */
export const CLAIM_INDEX_PREDICATE = `(status IN ('pending','sleeping','waiting') AND (queue IS NULL OR admitted_at IS NOT NULL))
       OR (compensating AND executor IS NULL)`;

/**
 * SQL of the queues migration (validated schema): a run's queue, key and priority; when it took its
 * queue slot (`admitted_at`: set by the claim that first starts it, kept until it finishes); one row
 * per queue, locked by the claims that admit runs to it; and the indexes the queued claim reads.
 * Every statement is idempotent; none rewrites the runs table (the new columns have constant defaults).
 */
export function addQueuesSql(schema: string): string[] {
  const s = `"${schema}"`;
  return [
    migrationLockSql(schema),
    `ALTER TABLE ${s}.runs ADD COLUMN IF NOT EXISTS queue text`,
    `ALTER TABLE ${s}.runs ADD COLUMN IF NOT EXISTS queue_key text`,
    `ALTER TABLE ${s}.runs ADD COLUMN IF NOT EXISTS priority integer NOT NULL DEFAULT 0`,
    `ALTER TABLE ${s}.runs ADD COLUMN IF NOT EXISTS admitted_at timestamptz`,
    // One row per configured queue: a claim that admits runs to a queue locks it (SKIP LOCKED: a queue
    // another replica is claiming from is skipped, not waited on) and bumps claim_seq.
    `CREATE TABLE IF NOT EXISTS ${s}.queues (
      name text PRIMARY KEY,
      claim_seq bigint NOT NULL DEFAULT 0,
      created_at timestamptz NOT NULL DEFAULT now()
    )`,
    // Queued runs waiting for a slot, in claim order within their queue.
    `CREATE INDEX IF NOT EXISTS runs_queue_due_idx ON ${s}.runs (queue, priority DESC, available_at, id)
       INCLUDE (queue_key)
       WHERE status = 'pending' AND queue IS NOT NULL AND admitted_at IS NULL`,
    // Runs holding a slot of their queue (started, not finished), counted per queue and per key.
    `CREATE INDEX IF NOT EXISTS runs_queue_active_idx ON ${s}.runs (queue, queue_key)
       WHERE admitted_at IS NOT NULL AND status IN ('pending','running','sleeping','waiting')`,
    // Starts of a queue in its rate window.
    `CREATE INDEX IF NOT EXISTS runs_queue_admitted_idx ON ${s}.runs (queue, admitted_at)
       WHERE admitted_at IS NOT NULL`,
    // The unqueued claim must not see queued runs waiting for a slot: runs_claim_idx gets the predicate
    // (built under a new name, then swapped in, so a rerun finds it done).
    `DO $$ BEGIN
       IF NOT EXISTS (SELECT 1 FROM pg_indexes WHERE schemaname = '${schema}' AND indexname = 'runs_claim_idx'
                      AND indexdef LIKE '%admitted_at%') THEN
         CREATE INDEX IF NOT EXISTS runs_claim_next_idx ON ${s}.runs (workflow, version, available_at)
           WHERE ${CLAIM_INDEX_PREDICATE};
         DROP INDEX IF EXISTS ${s}.runs_claim_idx;
         ALTER INDEX ${s}.runs_claim_next_idx RENAME TO runs_claim_idx;
       END IF;
     END $$`,
  ];
}

/** Builds the queues migration class for a schema. */
export function addQueuesMigration(schema: string): new () => MigrationInterface {
  return class AddDurableQueues implements MigrationInterface {
    readonly name = `DurableQueues_${schema}1765310000000`;

    async up(queryRunner: QueryRunner): Promise<void> {
      for (const statement of addQueuesSql(schema)) await queryRunner.query(statement);
    }

    async down(queryRunner: QueryRunner): Promise<void> {
      const s = `"${schema}"`;
      await queryRunner.query(`DROP INDEX IF EXISTS ${s}.runs_claim_idx`);
      await queryRunner.query(
        `CREATE INDEX IF NOT EXISTS runs_claim_idx ON ${s}.runs (workflow, version, available_at)
           WHERE status IN ('pending','sleeping','waiting') OR (compensating AND executor IS NULL)`,
      );
      for (const index of ['runs_queue_due_idx', 'runs_queue_active_idx', 'runs_queue_admitted_idx'])
        await queryRunner.query(`DROP INDEX IF EXISTS ${s}.${index}`);
      await queryRunner.query(`DROP TABLE IF EXISTS ${s}.queues`);
      for (const column of ['admitted_at', 'priority', 'queue_key', 'queue'])
        await queryRunner.query(`ALTER TABLE ${s}.runs DROP COLUMN IF EXISTS ${column}`);
    }
  };
}
