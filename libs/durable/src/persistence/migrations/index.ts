import type { MigrationInterface } from 'typeorm';
import { DEFAULT_SCHEMA } from '../../durable.constants';
import { assertValidSchemaName } from '../schema-name';
import { addRunEventsMigration, addRunEventsSql } from './add-run-events';
import { addQueuesMigration, addQueuesSql } from './add-queues';
import { addAdminIndexesMigration, addAdminIndexesSql } from './add-admin-indexes';
import { addSendAndStartOptionsMigration, addSendAndStartOptionsSql } from './add-send-and-start-options';
import { createDurableTablesMigration, createDurableTablesSql } from './create-durable-tables';
import { createSchedulesTableMigration, createSchedulesTableSql } from './create-schedules-table';
import { engineRecoveryMigration, engineRecoverySql } from './engine-recovery';

/**
 * The library's migrations, in order, for the app's DataSource `migrations` list (put them first).
 * @example
 * new DataSource({ type: 'postgres', url, migrations: [...durableMigrations(), CreateTenants1764...] })
 */
export function durableMigrations(options: { schema?: string } = {}): (new () => MigrationInterface)[] {
  const schema = options.schema ?? DEFAULT_SCHEMA;
  assertValidSchemaName(schema);
  return [
    createDurableTablesMigration(schema),
    engineRecoveryMigration(schema),
    addRunEventsMigration(schema),
    addAdminIndexesMigration(schema),
    createSchedulesTableMigration(schema),
    addSendAndStartOptionsMigration(schema),
    addQueuesMigration(schema),
  ];
}

/** Every migration's SQL, in order, for a schema: the whole DDL for raw SQL users. */
export function durableTablesSql(schema: string = DEFAULT_SCHEMA): string[] {
  assertValidSchemaName(schema);
  return [
    ...createDurableTablesSql(schema),
    ...engineRecoverySql(schema),
    ...addRunEventsSql(schema),
    ...addAdminIndexesSql(schema),
    ...createSchedulesTableSql(schema),
    ...addSendAndStartOptionsSql(schema),
    ...addQueuesSql(schema),
  ];
}
