import { durableMigrations } from 'nest-durable';
import { CreateTenants1764000000100 } from './1764000000100-create-tenants';
import { TenantProvisioning1764000000200 } from './1764000000200-tenant-provisioning';

/** Every migration of the sample app, the library's first. */
export const appMigrations = [
  ...durableMigrations(),
  CreateTenants1764000000100,
  TenantProvisioning1764000000200,
];
