import { Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import type { Pool, PoolClient, QueryConfig } from 'pg';
import { DataSource, EntityManager } from 'typeorm';
import { DURABLE_DATA_SOURCE } from '../durable.constants';
import { messages } from '../durable.messages';
import { DurableOptionsHolder } from '../durable.options';
import { InvalidOptionsError } from '../errors';
import { guardConnections } from './connection-guard';
import { channelName } from './schema-name';

/**
 * One statement name per distinct SQL text, shared by every instance (two schemas may share a pool).
 * The texts are fixed (values are always parameters), so the map stays small.
 */
const statementNames = new Map<string, string>();

function statementName(sql: string): string {
  let name = statementNames.get(sql);
  if (name === undefined) {
    name = `durable_${statementNames.size + 1}`;
    statementNames.set(sql, name);
  }
  return name;
}

/** Whether the connection of `manager`'s transaction died under it (TypeORM then releases its runner). */
export function transactionLost(manager: EntityManager | undefined): boolean {
  const runner = manager?.queryRunner;
  return !!runner?.isReleased && runner.isTransactionActive;
}

/** The error of a statement of such a transaction: transient (SQLSTATE 08003), so it is retried. */
export function transactionLostError(cause?: unknown): Error {
  return Object.assign(new Error(messages.transactionConnectionLost(), { cause }), { code: '08003' });
}

export interface QueryOutcome<T> {
  rows: T[];
  rowCount: number;
}

/**
 * The library's access to PostgreSQL through the app's DataSource. Without a manager a statement goes
 * straight to the DataSource's pg pool (one round trip, no ORM overhead); with one it runs on that
 * manager's transaction. A connection that fails never takes the process down (see connection-guard.ts).
 */
@Injectable()
export class DurableDatabase implements OnModuleInit {
  /** The schema, quoted for SQL (validated as an identifier at boot). */
  readonly s: string;
  /** The LISTEN/NOTIFY channel of the schema. */
  readonly channel: string;
  private readonly prepared: boolean;
  private readonly logger = new Logger('Durable');
  /** The pool last guarded (a DataSource initialized again gets a new one). */
  private guardedPool?: Pool;

  constructor(
    @Inject(DURABLE_DATA_SOURCE) private readonly dataSource: DataSource,
    options: DurableOptionsHolder,
  ) {
    if (dataSource.options.type !== 'postgres') {
      throw new InvalidOptionsError(messages.notPostgres(dataSource.options.type));
    }
    this.s = `"${options.value.schema}"`;
    this.channel = channelName(options.value.schema);
    this.prepared = options.value.preparedStatements;
  }

  onModuleInit(): void {
    this.guard();
  }

  get pool(): Pool {
    const pool = (this.dataSource.driver as unknown as { master: Pool }).master;
    if (pool !== this.guardedPool) this.guard();
    return pool;
  }

  private guard(): void {
    if (!this.dataSource.isInitialized) return;
    this.guardedPool = (this.dataSource.driver as unknown as { master: Pool }).master;
    guardConnections(this.dataSource, (error) => this.logger.warn(messages.connectionFailed(error)));
  }

  async query<T>(sql: string, params: unknown[], manager?: EntityManager): Promise<QueryOutcome<T>> {
    const config: QueryConfig = this.prepared
      ? { name: statementName(sql), text: sql, values: params }
      : { text: sql, values: params };
    const runner = manager?.queryRunner;
    // A transaction whose connection died (TypeORM releases the runner on the client's 'error') is
    // rolled back: its statements must fail, never run on another connection in autocommit (a step's
    // checkpoint committed without the step's business writes).
    if (transactionLost(manager)) throw transactionLostError();
    // The runner's own pg connection: the same transaction, without TypeORM's per-query wrapping.
    const client = runner && !runner.isReleased ? ((await runner.connect()) as PoolClient) : this.pool;
    const result = await client.query(config);
    return { rows: result.rows as T[], rowCount: result.rowCount ?? 0 };
  }

  transaction<T>(fn: (manager: EntityManager) => Promise<T>): Promise<T> {
    return this.dataSource.transaction(fn);
  }
}
