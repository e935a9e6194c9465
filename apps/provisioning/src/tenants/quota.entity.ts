import { Column, Entity, PrimaryColumn } from 'typeorm';

/** Capacity of one (plan, region): `reserved` counts the tenants holding a reservation. */
@Entity({ name: 'plan_quotas' })
export class PlanQuota {
  @PrimaryColumn('text') plan!: string;
  @PrimaryColumn('text') region!: string;
  @Column('int') capacity!: number;
  @Column('int') reserved!: number;
  @Column('timestamptz', { name: 'updated_at' }) updatedAt!: Date;
}

/** One tenant's reservation (primary key: the tenant, so it can never be reserved twice). */
@Entity({ name: 'quota_reservations' })
export class QuotaReservation {
  @PrimaryColumn('uuid', { name: 'tenant_id' }) tenantId!: string;
  @Column('text') plan!: string;
  @Column('text') region!: string;
  @Column('timestamptz', { name: 'reserved_at' }) reservedAt!: Date;
  @Column('timestamptz', { name: 'released_at', nullable: true }) releasedAt!: Date | null;
}
