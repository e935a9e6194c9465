/**
 * First statement of every migration of the library: replicas booting together on one database may
 * run the migrations at once, so they are serialized per schema (each statement is idempotent too).
 */
export function migrationLockSql(schema: string): string {
  return `SELECT pg_advisory_xact_lock(hashtext('durable-migrations:${schema}'))`;
}
