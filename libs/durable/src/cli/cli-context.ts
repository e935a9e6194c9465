import 'reflect-metadata';
import { INestApplicationContext, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ScheduleModule } from '@nestjs/schedule';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { DurableAdminStore } from '../admin/admin.store';
import { DurableClient } from '../durable.client';
import { DurableModule } from '../durable.module';
import { durableMigrations } from '../persistence/migrations';

/** Where the CLI connects. */
export interface CliConnection {
  databaseUrl: string;
  schema: string;
}

/** What a command works with: the client and the admin store of a client-only Nest context. */
export interface CliContext {
  client: DurableClient;
  store: DurableAdminStore;
  close(): Promise<void>;
}

/**
 * Boots a Nest application context with TypeORM and DurableModule({ worker: false }): the CLI uses the
 * library's own client and admin store, so it has no SQL of its own and never executes runs.
 */
export async function openCliContext(connection: CliConnection): Promise<CliContext> {
  @Module({
    imports: [
      TypeOrmModule.forRoot({
        type: 'postgres',
        url: connection.databaseUrl,
        extra: { max: 4, connectionTimeoutMillis: 10_000 },
        retryAttempts: 0,
      }),
      ScheduleModule.forRoot(),
      DurableModule.forRoot({ worker: false, recoverOnStartup: false, schema: connection.schema }),
    ],
  })
  class DurableCliModule {}

  const app: INestApplicationContext = await NestFactory.createApplicationContext(DurableCliModule, {
    logger: false,
    abortOnError: false,
  });
  return {
    client: app.get(DurableClient),
    store: app.get(DurableAdminStore),
    close: () => app.close(),
  };
}

/** Applies the library's migrations (recorded in the `migrations` table, as an app's DataSource does). */
export async function migrate(connection: CliConnection, migrationsTable: string): Promise<string[]> {
  const dataSource = new DataSource({
    type: 'postgres',
    url: connection.databaseUrl,
    migrations: durableMigrations({ schema: connection.schema }),
    migrationsTableName: migrationsTable,
    extra: { max: 1, connectionTimeoutMillis: 10_000 },
  });
  await dataSource.initialize();
  try {
    const applied = await dataSource.runMigrations({ transaction: 'each' });
    return applied.map((migration) => migration.name);
  } finally {
    await dataSource.destroy();
  }
}
