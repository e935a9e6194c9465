import { Column, Entity, PrimaryColumn } from 'typeorm';

/** A user of a tenant; provisioning creates its admin. */
@Entity({ name: 'tenant_users' })
export class TenantUser {
  @PrimaryColumn('uuid') id!: string;
  @Column('uuid', { name: 'tenant_id' }) tenantId!: string;
  @Column('text') email!: string;
  @Column('text') role!: string;
  @Column('timestamptz', { name: 'created_at' }) createdAt!: Date;
}

/** An API key: only its prefix and a hash are stored (and never the secret in a step's output). */
@Entity({ name: 'api_keys' })
export class ApiKey {
  @PrimaryColumn('uuid') id!: string;
  @Column('uuid', { name: 'tenant_id' }) tenantId!: string;
  @Column('uuid', { name: 'user_id' }) userId!: string;
  @Column('text') prefix!: string;
  @Column('text', { name: 'secret_hash' }) secretHash!: string;
  @Column('timestamptz', { name: 'created_at' }) createdAt!: Date;
  @Column('timestamptz', { name: 'revoked_at', nullable: true }) revokedAt!: Date | null;
}
