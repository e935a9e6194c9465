import { Inject, Injectable } from '@nestjs/common';
import type { DataSource, EntityManager, QueryRunner } from 'typeorm';
import { DURABLE_DATA_SOURCE } from '../durable.constants';
import { durableScope } from './durable-scope';

/** Isolation levels a transactional step may ask for. */
export type StepIsolationLevel = 'READ COMMITTED' | 'REPEATABLE READ' | 'SERIALIZABLE';

/** The parts of @nestjs-cls/transactional's TransactionHost the library uses (an optional peer). */
interface TransactionHostLike {
  isTransactionActive(): boolean;
  readonly tx: unknown;
  withTransaction<R>(propagation: string, options: object, fn: () => Promise<R>): Promise<R>;
}

interface ClsTransactionalModule {
  TransactionHost: { getInstance(connectionName?: string): TransactionHostLike };
  Propagation: { RequiresNew: string };
}

let clsTransactional: ClsTransactionalModule | null | undefined;

function loadClsTransactional(): ClsTransactionalModule | null {
  if (clsTransactional === undefined) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      clsTransactional = require('@nestjs-cls/transactional') as ClsTransactionalModule;
    } catch {
      clsTransactional = null;
    }
  }
  return clsTransactional;
}

/**
 * Finds the transaction a call should join and opens step transactions. The ambient transaction is,
 * in order: the current transactional step's, then @nestjs-cls/transactional's active one (when the
 * app registered ClsPluginTransactional for this DataSource). Asked on every call, never cached.
 */
@Injectable()
export class TransactionContext {
  /** The host once found; `null` once the app has booted without one (looked up on every call before). */
  private host?: TransactionHostLike | null;

  constructor(@Inject(DURABLE_DATA_SOURCE) private readonly dataSource: DataSource) {}

  /** The EntityManager of the transaction the current call runs in, if any. */
  ambientManager(): EntityManager | undefined {
    const stepManager = durableScope.getStore()?.step?.manager;
    if (stepManager) return stepManager;
    const host = this.clsHost();
    return host?.isTransactionActive() ? (host.tx as EntityManager) : undefined;
  }

  /**
   * Runs `fn` in a new transaction whose first statement is `opening` (parameterless SQL). With
   * nestjs-cls it is opened through TransactionHost, so code in the step that uses `TransactionHost.tx`
   * (or @Transactional()) joins the step's transaction; otherwise `opening` travels with the BEGIN.
   */
  async run<T>(
    isolation: StepIsolationLevel | undefined,
    opening: string,
    fn: (manager: EntityManager) => Promise<T>,
  ): Promise<T> {
    const host = this.clsHost();
    if (host) {
      const { Propagation } = loadClsTransactional()!;
      const options = isolation ? { isolationLevel: isolation } : {};
      return host.withTransaction(Propagation.RequiresNew, options, async () => {
        const manager = host.tx as EntityManager;
        await manager.query(opening);
        return fn(manager);
      });
    }
    const runner = this.dataSource.createQueryRunner();
    const sentWithBegin = sendWithBegin(runner, opening);
    const body = async (manager: EntityManager) => {
      if (!sentWithBegin()) await manager.query(opening);
      return fn(manager);
    };
    try {
      return await (isolation
        ? runner.manager.transaction(isolation, body)
        : runner.manager.transaction(body));
    } finally {
      await runner.release();
    }
  }

  /** After bootstrap the app's providers are all created: a missing TransactionHost stays missing. */
  settle(): void {
    if (this.host === undefined) this.host = this.findClsHost() ?? null;
  }

  /** TransactionHost bound to this DataSource, when the app uses @nestjs-cls/transactional. */
  private clsHost(): TransactionHostLike | undefined {
    if (this.host !== undefined) return this.host ?? undefined;
    const host = this.findClsHost();
    if (host) this.host = host;
    return host;
  }

  private findClsHost(): TransactionHostLike | undefined {
    const module = loadClsTransactional();
    if (!module) return undefined;
    let host: TransactionHostLike;
    try {
      host = module.TransactionHost.getInstance();
    } catch {
      return undefined;
    }
    const manager = host.tx as Partial<EntityManager> | undefined;
    return manager?.connection === this.dataSource ? host : undefined;
  }
}

/**
 * Makes the runner's next BEGIN ("START TRANSACTION", sent without parameters, so as a simple query
 * that may hold several statements) carry `sql` in the same round trip. Returns whether it did; if a
 * TypeORM version begins differently, the caller sends `sql` on its own.
 */
function sendWithBegin(runner: QueryRunner, sql: string): () => boolean {
  const query = runner.query;
  let sent = false;
  runner.query = function (this: QueryRunner, text: string, parameters?: unknown[], structured?: boolean) {
    if (text === 'START TRANSACTION' && parameters === undefined) {
      runner.query = query;
      sent = true;
      text = `START TRANSACTION; ${sql}`;
    }
    return Reflect.apply(query, this, [text, parameters, structured]) as Promise<unknown>;
  } as QueryRunner['query'];
  return () => {
    runner.query = query;
    return sent;
  };
}
