import type { MigrationInterface } from 'typeorm';
import { DEFAULT_SCHEMA } from '../../durable.constants';
import { assertValidSchemaName } from '../schema-name';
import { createDurableTablesMigration } from './create-durable-tables';

/**
 * The library's migrations, in order, for the app's DataSource `migrations` list (put them first).
 * @example
 * new DataSource({ type: 'postgres', url, migrations: [...durableMigrations(), CreateTenants1764...] })
 */
export function durableMigrations(options: { schema?: string } = {}): (new () => MigrationInterface)[] {
  const schema = options.schema ?? DEFAULT_SCHEMA;
  assertValidSchemaName(schema);
  return [createDurableTablesMigration(schema)];
}
