import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { appMigrations } from './index';

/**
 * The DataSource the TypeORM CLI uses (`npm run migration:run`): DATABASE_URL, the library's
 * migrations first, then the sample app's.
 */
if (!process.env.DATABASE_URL) {
  throw new Error('Set DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/app) to run migrations.');
}

export default new DataSource({
  type: 'postgres',
  url: process.env.DATABASE_URL,
  migrations: appMigrations,
});
