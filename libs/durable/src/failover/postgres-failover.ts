import type { Socket } from 'node:net';
import { parseMultiHostConnectionString } from './connection-string';
import { failoverStream } from './failover-stream';

/** TypeORM `postgres` DataSource options for a multi-host connection string (spread them in). */
export interface PostgresFailoverOptions {
  host: string;
  port: number;
  username?: string;
  password?: string;
  database?: string;
  ssl?: boolean | { rejectUnauthorized: boolean };
  applicationName?: string;
  /** Passed to pg's Pool: the failover `stream`. Merge your own pool settings into it. */
  extra: { stream: () => Socket };
}

/**
 * DataSource options that make TypeORM (and the library, which uses the DataSource's pool) survive a
 * failover with a libpq multi-host connection string, which node-postgres cannot parse itself:
 * every new pooled connection goes to the first listed host that accepts the session
 * `target_session_attrs` asks for. `host` and `port` are the first host's (pg names it for TLS).
 * @example
 * TypeOrmModule.forRoot({
 *   type: 'postgres',
 *   ...postgresFailover('postgres://app:secret@db1:5432,db2:5432/app?target_session_attrs=read-write'),
 *   migrations: [...durableMigrations()],
 * });
 * // own pool settings: extra: { ...failover.extra, max: 20 }
 */
export function postgresFailover(connectionString: string): PostgresFailoverOptions {
  const parsed = parseMultiHostConnectionString(connectionString);
  const options: PostgresFailoverOptions = {
    host: parsed.hosts[0].host,
    port: parsed.hosts[0].port,
    extra: { stream: failoverStream(parsed) },
  };
  if (parsed.user !== undefined) options.username = parsed.user;
  if (parsed.password !== undefined) options.password = parsed.password;
  if (parsed.database !== undefined) options.database = parsed.database;
  if (parsed.ssl !== undefined) options.ssl = parsed.ssl;
  if (parsed.applicationName !== undefined) options.applicationName = parsed.applicationName;
  return options;
}
