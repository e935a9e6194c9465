import { durableMigrations } from '@app/durable';
import { CreateTenants1764000000100 } from './1764000000100-create-tenants';

/** Every migration of the sample app, the library's first. */
export const appMigrations = [...durableMigrations(), CreateTenants1764000000100];
