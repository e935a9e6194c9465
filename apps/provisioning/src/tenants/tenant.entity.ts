import { Column, CreateDateColumn, Entity, PrimaryColumn, UpdateDateColumn } from 'typeorm';

export type TenantPlan = 'free' | 'pro' | 'enterprise';
export type TenantStatus = 'provisioning' | 'active' | 'failed';

@Entity({ name: 'tenants' })
export class Tenant {
  @PrimaryColumn('uuid') id!: string;
  @Column('text') name!: string;
  @Column('text') plan!: TenantPlan;
  @Column('text') region!: string;
  @Column('text', { name: 'admin_email' }) adminEmail!: string;
  @Column('text') status!: TenantStatus;
  @Column('text', { name: 'run_id' }) runId!: string;
  @Column('text', { name: 'database_id', nullable: true }) databaseId!: string | null;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' }) updatedAt!: Date;
}
