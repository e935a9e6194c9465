import { Inject, Injectable } from '@nestjs/common';
import type { Pool } from 'pg';
import { DataSource, EntityManager } from 'typeorm';
import { DURABLE_DATA_SOURCE } from '../durable.constants';
import { messages } from '../durable.messages';
import { DurableOptionsHolder } from '../durable.options';
import { InvalidOptionsError } from '../errors';
import { channelName } from './schema-name';

export interface QueryOutcome<T> {
  rows: T[];
  rowCount: number;
}

/**
 * The library's access to PostgreSQL through the app's DataSource. Without a manager a statement goes
 * straight to the DataSource's pg pool (one round trip, no ORM overhead); with one it runs on that
 * manager's transaction.
 */
@Injectable()
export class DurableDatabase {
  /** The schema, quoted for SQL (validated as an identifier at boot). */
  readonly s: string;
  /** The LISTEN/NOTIFY channel of the schema. */
  readonly channel: string;

  constructor(
    @Inject(DURABLE_DATA_SOURCE) private readonly dataSource: DataSource,
    options: DurableOptionsHolder,
  ) {
    if (dataSource.options.type !== 'postgres') {
      throw new InvalidOptionsError(messages.notPostgres(dataSource.options.type));
    }
    this.s = `"${options.value.schema}"`;
    this.channel = channelName(options.value.schema);
  }

  get pool(): Pool {
    return (this.dataSource.driver as unknown as { master: Pool }).master;
  }

  async query<T>(sql: string, params: unknown[], manager?: EntityManager): Promise<QueryOutcome<T>> {
    const runner = manager?.queryRunner;
    if (runner && !runner.isReleased) {
      const result = await runner.query(sql, params, true);
      return { rows: (result.records ?? []) as T[], rowCount: result.affected ?? 0 };
    }
    const result = await this.pool.query(sql, params);
    return { rows: result.rows as T[], rowCount: result.rowCount ?? 0 };
  }

  transaction<T>(fn: (manager: EntityManager) => Promise<T>): Promise<T> {
    return this.dataSource.transaction(fn);
  }
}
