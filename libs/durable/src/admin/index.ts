export { DurableAdminModule } from './durable-admin.module';
export { DurableAdminStore } from './admin.store';
export { parseAdminFilter, type AdminFilterQuery } from './admin-filter.parser';
export type { DurableAdminModuleOptions } from './admin.options';
export type * from './admin.interfaces';
export { escapeHtml } from './dashboard/html';
