import type { MigrationInterface, QueryRunner } from 'typeorm';

/** The sample app's own table; runs after the library's migrations. */
export class CreateTenants1764000000100 implements MigrationInterface {
  readonly name = 'CreateTenants1764000000100';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE tenants (
        id uuid PRIMARY KEY,
        name text NOT NULL,
        plan text NOT NULL CHECK (plan IN ('free', 'pro', 'enterprise')),
        region text NOT NULL,
        admin_email text NOT NULL,
        status text NOT NULL DEFAULT 'provisioning',
        run_id text NOT NULL,
        database_id text,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP TABLE tenants');
  }
}
