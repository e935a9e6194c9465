import { Module } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DurableModule } from '@app/durable';
import { appMigrations } from '../../../migrations';
import { Tenant } from './tenants/tenant.entity';
import { TenantsModule } from './tenants/tenants.module';

@Module({
  imports: [
    TypeOrmModule.forRootAsync({
      useFactory: () => ({
        type: 'postgres',
        url: process.env.DATABASE_URL,
        entities: [Tenant],
        migrations: appMigrations,
        migrationsRun: true,
      }),
    }),
    ScheduleModule.forRoot(),
    // A stable executor id (the pod name in Kubernetes) lets a restarted replica resume its runs at once.
    DurableModule.forRootAsync({
      useFactory: () => ({ executorId: process.env.EXECUTOR_ID ?? 'provisioning-local' }),
    }),
    TenantsModule,
  ],
})
export class AppModule {}
