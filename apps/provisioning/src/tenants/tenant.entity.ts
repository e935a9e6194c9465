import { Column, CreateDateColumn, Entity, PrimaryColumn, UpdateDateColumn } from 'typeorm';

export const TENANT_PLANS = ['free', 'pro', 'enterprise'] as const;
export type TenantPlan = (typeof TENANT_PLANS)[number];

/**
 * provisioning -> (enterprise: awaiting_approval -> provisioning) -> active
 * on a failure, rejection or approval timeout after the quota was reserved: compensating -> failed
 * on a cancel: cancelled (after the compensations, when resources existed)
 */
export const TENANT_STATUSES = [
  'provisioning',
  'awaiting_approval',
  'active',
  'compensating',
  'failed',
  'cancelled',
] as const;
export type TenantStatus = (typeof TENANT_STATUSES)[number];

@Entity({ name: 'tenants' })
export class Tenant {
  @PrimaryColumn('uuid') id!: string;
  @Column('text') name!: string;
  @Column('text') plan!: TenantPlan;
  @Column('text') region!: string;
  @Column('text', { name: 'admin_email' }) adminEmail!: string;
  @Column('text') status!: TenantStatus;
  @Column('text', { name: 'run_id' }) runId!: string;
  /** The client's Idempotency-Key of POST /tenants (unique). */
  @Column('text', { name: 'idempotency_key', nullable: true }) idempotencyKey!: string | null;
  @Column('text', { name: 'database_id', nullable: true }) databaseId!: string | null;
  @Column('text', { name: 'dns_name', nullable: true }) dnsName!: string | null;
  @Column('text', { name: 'approved_by', nullable: true }) approvedBy!: string | null;
  @Column('text', { name: 'failure_reason', nullable: true }) failureReason!: string | null;
  /** Set by POST /tenants/:id/cancel before it cancels the run: the undos then end the tenant 'cancelled'. */
  @Column('timestamptz', { name: 'cancel_requested_at', nullable: true }) cancelRequestedAt!: Date | null;
  @Column('timestamptz', { name: 'activated_at', nullable: true }) activatedAt!: Date | null;
  @Column('timestamptz', { name: 'finished_at', nullable: true }) finishedAt!: Date | null;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' }) updatedAt!: Date;
}
