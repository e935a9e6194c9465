import {
  ConsoleLogger,
  DynamicModule,
  INestApplicationContext,
  Logger,
  LogLevel,
  ModuleMetadata,
  Provider,
} from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource, DataSourceOptions } from 'typeorm';
import { DurableModule, DurableModuleOptions, durableMigrations, postgresFailover } from 'nest-durable';

export interface DurableAppOptions {
  url: string;
  /** `url` is a libpq multi-host connection string: connect through the library's postgresFailover(). */
  failover?: boolean;
  providers: Provider[];
  durable?: DurableModuleOptions;
  logLevels?: LogLevel[];
  /** pg `application_name` of the app's connections (lets a test tell two apps' statements apart). */
  applicationName?: string;
  /** Size of the app's pg pool. Default 10. */
  poolSize?: number;
  /** Schema whose library migrations run at boot. Default: `durable.schema` (or the library default). */
  migrationSchema?: string;
  /** Used instead of `DurableModule.forRoot(durable)`, e.g. a `DurableModule.forRootAsync(...)`. */
  durableModule?: DynamicModule;
  /** Import `ScheduleModule.forRoot()`. Default true (the library requires it; false tests that). */
  schedule?: boolean;
  /** More modules for the app (e.g. TerminusModule). */
  imports?: NonNullable<ModuleMetadata['imports']>;
}

/** Boots a Nest application context with TypeORM (migrations run), ScheduleModule and DurableModule. */
export async function createDurableApp(options: DurableAppOptions): Promise<INestApplicationContext> {
  const schema = options.migrationSchema ?? options.durable?.schema;
  // Data sources opened for this app, closed again if the boot fails (e.g. invalid DurableModule options),
  // so a failed boot leaves no pool holding the test process open.
  const opened: Promise<DataSource>[] = [];
  try {
    const moduleRef = await Test.createTestingModule({
      imports: [
        // forRootAsync: only it honours dataSourceFactory, which records the DataSource for cleanup.
        TypeOrmModule.forRootAsync({
          useFactory: () => {
            const connection = options.failover
              ? postgresFailover(options.url)
              : { url: options.url, extra: {} };
            return {
              type: 'postgres' as const,
              ...connection,
              ...(options.applicationName ? { applicationName: options.applicationName } : {}),
              migrations: durableMigrations({ schema }),
              migrationsRun: true,
              migrationsTableName: `migrations_${schema ?? 'durable'}`,
              extra: { ...connection.extra, max: options.poolSize ?? 10 },
            };
          },
          dataSourceFactory: (dataSourceOptions?: DataSourceOptions) => {
            const initialized = new DataSource(dataSourceOptions!).initialize();
            opened.push(initialized);
            return initialized;
          },
        }),
        ...(options.schedule === false ? [] : [ScheduleModule.forRoot()]),
        options.durableModule ?? DurableModule.forRoot(options.durable ?? {}),
        ...(options.imports ?? []),
      ],
      providers: options.providers,
    })
      // Without a logger of its own, compile() installs Nest's TestingLogger, which drops warn/log whatever
      // the levels: `logLevels` would only ever show errors.
      .setLogger(new ConsoleLogger({ logLevels: options.logLevels ?? ['error'] }))
      .compile();
    const app = moduleRef;
    app.useLogger(options.logLevels ?? ['error']);
    Logger.overrideLogger(options.logLevels ?? ['error']);
    await app.init();
    return app;
  } catch (error) {
    // The boot may fail while a DataSource is still connecting: wait for it, then close it.
    const settled = await Promise.allSettled(opened);
    await Promise.all(
      settled.map((s) =>
        s.status === 'fulfilled' && s.value.isInitialized
          ? s.value.destroy().catch(() => undefined)
          : undefined,
      ),
    );
    throw error;
  }
}
