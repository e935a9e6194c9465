import type { EventEmitter } from 'node:events';
import type { Pool } from 'pg';
import type { DataSource } from 'typeorm';

/** Pools and clients that already carry the guard's listener. */
const guarded = new WeakSet<EventEmitter>();

/**
 * Makes a connection that dies (a terminated backend, a server restart, a dropped network) an event
 * the process survives: puts an 'error' listener on each pg pool of the DataSource and on every client
 * of those pools, existing ones and each one they create later.
 *
 * node-postgres emits 'error' on a client whose connection fails while no query is running on it, and
 * an EventEmitter with no 'error' listener throws, which ends the process. The pool listens on idle
 * clients, and whoever checks a client out is expected to listen while holding it; but a client is
 * unguarded in between: TypeORM's `connect` attaches its listener only after a promise settles, so a
 * termination notice that arrives in the same read as the reply that released the client (to a
 * waiting TypeORM connect) finds no listener. With this listener the failure is only logged; the
 * client is unusable, its next query fails, and the pool discards it on release.
 * Idempotent: a pool or client is guarded once, whatever the number of calls.
 */
export function guardConnections(dataSource: DataSource, onError: (error: Error) => void): void {
  for (const pool of poolsOf(dataSource)) guardPool(pool, onError);
}

/** The pg pools of a TypeORM postgres DataSource: the master, and the replicas of a replication setup. */
function poolsOf(dataSource: DataSource): Pool[] {
  const driver = dataSource.driver as unknown as { master?: Pool; slaves?: Pool[] };
  return [driver.master, ...(driver.slaves ?? [])].filter((pool): pool is Pool => pool !== undefined);
}

function guardPool(pool: Pool, onError: (error: Error) => void): void {
  if (guarded.has(pool)) return;
  guarded.add(pool);
  // The pool re-emits idle clients' errors; TypeORM listens there, but a pool nobody listens to throws.
  if (pool.listenerCount('error') === 0) pool.on('error', onError);
  pool.on('connect', (client) => guardClient(client, onError));
  const existing = (pool as unknown as { _clients?: EventEmitter[] })._clients ?? [];
  for (const client of existing) guardClient(client, onError);
}

function guardClient(client: EventEmitter, onError: (error: Error) => void): void {
  if (guarded.has(client)) return;
  guarded.add(client);
  client.on('error', onError);
}
