import { CanActivate, INestApplication, Provider, Type } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DurableModule, DurableModuleOptions, durableMigrations } from 'nest-durable';
import { DurableAdminModule, DurableAdminModuleOptions } from 'nest-durable/admin';

export interface AdminAppOptions {
  url: string;
  providers?: Provider[];
  durable?: DurableModuleOptions;
  admin?: DurableAdminModuleOptions;
  /** Guard classes the admin options name, provided by the app. */
  guards?: Type<CanActivate>[];
}

/** An HTTP Nest app (listening on a free loopback port) with DurableModule and DurableAdminModule. */
export async function createAdminApp(options: AdminAppOptions): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({
    imports: [
      TypeOrmModule.forRoot({
        type: 'postgres',
        url: options.url,
        migrations: durableMigrations(),
        migrationsRun: true,
        extra: { max: 10 },
      }),
      ScheduleModule.forRoot(),
      DurableModule.forRoot({ leaseMs: 2_000, heartbeatMs: 500, pollIntervalMs: 100, ...options.durable }),
      DurableAdminModule.forRoot(options.admin ?? {}),
    ],
    providers: [...(options.providers ?? []), ...(options.guards ?? [])],
  }).compile();
  const app = moduleRef.createNestApplication({ logger: ['error'] });
  await app.listen(0, '127.0.0.1');
  return app;
}
