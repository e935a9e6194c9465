import { INestApplicationContext, Logger, LogLevel, Provider } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DurableModule, DurableModuleOptions, durableMigrations } from '@app/durable';

export interface DurableAppOptions {
  url: string;
  providers: Provider[];
  durable?: DurableModuleOptions;
  logLevels?: LogLevel[];
}

/** Boots a Nest application context with TypeORM (migrations run), ScheduleModule and DurableModule. */
export async function createDurableApp(options: DurableAppOptions): Promise<INestApplicationContext> {
  const schema = options.durable?.schema;
  const moduleRef = await Test.createTestingModule({
    imports: [
      TypeOrmModule.forRoot({
        type: 'postgres',
        url: options.url,
        migrations: durableMigrations({ schema }),
        migrationsRun: true,
        migrationsTableName: `migrations_${schema ?? 'durable'}`,
        extra: { max: 10 },
      }),
      ScheduleModule.forRoot(),
      DurableModule.forRoot(options.durable ?? {}),
    ],
    providers: options.providers,
  }).compile();
  const app = moduleRef;
  app.useLogger(options.logLevels ?? ['error']);
  Logger.overrideLogger(options.logLevels ?? ['error']);
  await app.init();
  return app;
}
