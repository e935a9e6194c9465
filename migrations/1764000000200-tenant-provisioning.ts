import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The provisioning app's tables beyond `tenants`: the client's idempotency key (unique), the saga's
 * bookkeeping on the tenant, plan quotas per (plan, region) with one reservation row per tenant, and the
 * tenant's users and API keys.
 */
export class TenantProvisioning1764000000200 implements MigrationInterface {
  readonly name = 'TenantProvisioning1764000000200';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      ALTER TABLE tenants
        ADD COLUMN idempotency_key text,
        ADD COLUMN dns_name text,
        ADD COLUMN approved_by text,
        ADD COLUMN failure_reason text,
        ADD COLUMN cancel_requested_at timestamptz,
        ADD COLUMN activated_at timestamptz,
        ADD COLUMN finished_at timestamptz,
        ADD CONSTRAINT tenants_idempotency_key_key UNIQUE (idempotency_key),
        ADD CONSTRAINT tenants_status_check CHECK (status IN
          ('provisioning', 'awaiting_approval', 'active', 'compensating', 'failed', 'cancelled'))`);
    await queryRunner.query(`CREATE INDEX tenants_created_idx ON tenants (created_at DESC, id DESC)`);
    await queryRunner.query(`CREATE INDEX tenants_status_idx ON tenants (status, created_at DESC)`);
    await queryRunner.query(`
      CREATE TABLE plan_quotas (
        plan text NOT NULL CHECK (plan IN ('free', 'pro', 'enterprise')),
        region text NOT NULL,
        capacity integer NOT NULL CHECK (capacity >= 0),
        reserved integer NOT NULL DEFAULT 0,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (plan, region),
        CONSTRAINT plan_quotas_within_capacity CHECK (reserved >= 0 AND reserved <= capacity)
      )`);
    await queryRunner.query(`
      CREATE TABLE quota_reservations (
        tenant_id uuid PRIMARY KEY REFERENCES tenants (id),
        plan text NOT NULL,
        region text NOT NULL,
        reserved_at timestamptz NOT NULL DEFAULT now(),
        released_at timestamptz,
        FOREIGN KEY (plan, region) REFERENCES plan_quotas (plan, region)
      )`);
    await queryRunner.query(`
      CREATE TABLE tenant_users (
        id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        email text NOT NULL,
        role text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (tenant_id, email)
      )`);
    await queryRunner.query(`
      CREATE TABLE api_keys (
        id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        user_id uuid NOT NULL REFERENCES tenant_users (id),
        prefix text NOT NULL UNIQUE,
        secret_hash text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        revoked_at timestamptz
      )`);
    await queryRunner.query(`CREATE INDEX api_keys_tenant_idx ON api_keys (tenant_id)`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP TABLE api_keys');
    await queryRunner.query('DROP TABLE tenant_users');
    await queryRunner.query('DROP TABLE quota_reservations');
    await queryRunner.query('DROP TABLE plan_quotas');
    await queryRunner.query('DROP INDEX tenants_status_idx');
    await queryRunner.query('DROP INDEX tenants_created_idx');
    await queryRunner.query(`
      ALTER TABLE tenants
        DROP CONSTRAINT tenants_status_check,
        DROP CONSTRAINT tenants_idempotency_key_key,
        DROP COLUMN finished_at,
        DROP COLUMN activated_at,
        DROP COLUMN cancel_requested_at,
        DROP COLUMN failure_reason,
        DROP COLUMN approved_by,
        DROP COLUMN dns_name,
        DROP COLUMN idempotency_key`);
  }
}
