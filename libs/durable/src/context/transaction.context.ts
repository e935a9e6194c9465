import { Inject, Injectable } from '@nestjs/common';
import type { DataSource, EntityManager } from 'typeorm';
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
   * Runs `fn` in a new transaction. With nestjs-cls it is opened through TransactionHost, so code in
   * the step that uses `TransactionHost.tx` (or @Transactional()) joins the step's transaction.
   */
  run<T>(isolation: StepIsolationLevel | undefined, fn: (manager: EntityManager) => Promise<T>): Promise<T> {
    const host = this.clsHost();
    if (host) {
      const { Propagation } = loadClsTransactional()!;
      const options = isolation ? { isolationLevel: isolation } : {};
      return host.withTransaction(Propagation.RequiresNew, options, () => fn(host.tx as EntityManager));
    }
    return isolation ? this.dataSource.transaction(isolation, fn) : this.dataSource.transaction(fn);
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
