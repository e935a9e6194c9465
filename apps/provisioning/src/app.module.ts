import { Module } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { TypeOrmModule } from '@nestjs/typeorm';
import { TerminusModule } from '@nestjs/terminus';
import { DurableHealthModule, DurableModule } from 'nest-durable';
import { DurableAdminModule } from 'nest-durable/admin';
import { appMigrations } from '../../../migrations';
import { ConfigModule } from './config/config.module';
import { PROVISIONING_CONFIG, ProvisioningConfig } from './config/provisioning.config';
import { FakeProviderModule } from './fake-provider/fake-provider.module';
import { DemoDashboardGuard } from './dashboard.guard';
import { HealthController } from './health.controller';
import { RunsController } from './runs/runs.controller';
import { PlanQuota, QuotaReservation } from './tenants/quota.entity';
import { ApiKey, TenantUser } from './tenants/tenant-user.entity';
import { Tenant } from './tenants/tenant.entity';
import { TenantsModule } from './tenants/tenants.module';

/** URL path of the durable dashboard. */
export const DASHBOARD_PATH = 'durable';

@Module({
  imports: [
    ConfigModule,
    TypeOrmModule.forRootAsync({
      inject: [PROVISIONING_CONFIG],
      useFactory: (config: ProvisioningConfig) => ({
        type: 'postgres',
        url: process.env.DATABASE_URL,
        entities: [Tenant, PlanQuota, QuotaReservation, TenantUser, ApiKey],
        migrations: appMigrations, // the library's first
        migrationsRun: true,
        extra: {
          // Enough connections for every run's transactional step plus the API and the library's LISTEN.
          max: Number(process.env.DB_POOL_SIZE ?? (config.durable.concurrency ?? 20) + 10),
          // Bounds a frozen process inside a step's transaction too (see the library's README).
          idle_in_transaction_session_timeout: config.durable.leaseMs ?? 30_000,
        },
      }),
    }),
    ScheduleModule.forRoot(),
    // A stable executor id (the pod name in Kubernetes) lets a restarted replica resume its runs at once.
    DurableModule.forRootAsync({
      inject: [PROVISIONING_CONFIG],
      useFactory: (config: ProvisioningConfig) => config.durable,
    }),
    TerminusModule,
    DurableHealthModule,
    // The operator dashboard and admin API at /durable (/durable/api), behind the app's guard.
    DurableAdminModule.forRoot({ path: DASHBOARD_PATH, guard: DemoDashboardGuard }),
    TenantsModule,
    FakeProviderModule,
  ],
  providers: [DemoDashboardGuard],
  controllers: [HealthController, RunsController],
})
export class AppModule {}
