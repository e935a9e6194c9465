export * from './decorators/step.decorator';
export * from './decorators/workflow.decorator';
export { Durable } from './durable';
export { DurableClient, WorkflowRef } from './durable.client';
export { DurableModule } from './durable.module';
export { DurableEvents } from './engine/durable.events';
export * from './events/lifecycle-events';
export type { RunStreamItem, RunStreamOptions } from './events/run-events';
export { DURABLE_METRICS, DURABLE_TELEMETRY_ATTRIBUTES } from './telemetry';
export { resolveDurableOptions } from './durable.options';
export type { Duration } from './duration';
export * from './errors';
export { postgresFailover, failoverStream, parseMultiHostConnectionString } from './failover';
export type {
  PostgresFailoverOptions,
  MultiHostConnectionString,
  TargetSessionAttrs,
  HostAndPort,
} from './failover';
export * from './health';
export * from './interfaces';
export { durableMigrations } from './persistence/migrations';
export * from './schedules';
export type { QueueOptions } from './queues';
// The admin module (dashboard and API) is imported from 'nest-durable/admin'; its store and types from here.
export { DurableAdminStore } from './admin/admin.store';
export type * from './admin/admin.interfaces';
export type { DurableAdminModuleOptions } from './admin/admin.options';
export type { PurgeOptions } from './durable.client';
export type { PurgeResult, RetentionOptions } from './retention';
