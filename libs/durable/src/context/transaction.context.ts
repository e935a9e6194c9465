import { Inject, Injectable } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import type { DataSource, EntityManager, QueryRunner } from 'typeorm';
import { DURABLE_DATA_SOURCE } from '../durable.constants';
import { messages } from '../durable.messages';
import { InvalidOptionsError } from '../errors/invalid-options.error';
import { durableScope } from './durable-scope';

/** Isolation levels a transactional step may ask for. */
export type StepIsolationLevel = 'READ COMMITTED' | 'REPEATABLE READ' | 'SERIALIZABLE';

/**
 * The parts of @nestjs-cls/transactional's TransactionHost the library uses. That optional peer is
 * never imported (a `require` fails in an ES module build, and an app may load another copy of the
 * package than the library would): the host is the instance the app registered, found among the app's
 * providers, so the integration works the same from CommonJS and ES module apps and builds.
 */
interface TransactionHostLike {
  isTransactionActive(): boolean;
  readonly tx: unknown;
  withTransaction<R>(propagation: string, options: object, fn: () => Promise<R>): Promise<R>;
}

/** `Propagation.RequiresNew`; withTransaction throws on a value it does not know, never ignores it. */
const REQUIRES_NEW = 'REQUIRES_NEW';

/**
 * Finds the transaction a call should join and opens step transactions. The ambient transaction is,
 * in order: the current transactional step's, then @nestjs-cls/transactional's active one (when the
 * app registered ClsPluginTransactional for this DataSource). Asked on every call, never cached.
 */
@Injectable()
export class TransactionContext {
  /** The host once found; `null` once the app has booted without one (looked up on every call before). */
  private host?: TransactionHostLike | null;

  constructor(
    @Inject(DURABLE_DATA_SOURCE) private readonly dataSource: DataSource,
    private readonly discovery: DiscoveryService,
  ) {}

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
      const options = isolation ? { isolationLevel: isolation } : {};
      return host.withTransaction(REQUIRES_NEW, options, async () => {
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

  /**
   * The app's TransactionHost bound to this DataSource (the default host first, then a named one).
   * A host bound to it that lacks what the library calls fails loudly: steps would otherwise run in
   * another transaction than the one `@Transactional()` code uses.
   */
  private findClsHost(): TransactionHostLike | undefined {
    let found: { host: TransactionHostLike; isDefault: boolean } | undefined;
    for (const wrapper of this.discovery.getProviders()) {
      const host = readProvider(wrapper, this.dataSource);
      if (!host) continue;
      const isDefault = wrapper.token === wrapper.metatype;
      if (!found || (isDefault && !found.isDefault)) found = { host, isDefault };
    }
    return found?.host;
  }
}

type ProviderWrapper = ReturnType<DiscoveryService['getProviders']>[number];

/**
 * The provider's instance when it is a TransactionHost whose manager belongs to `dataSource`; one
 * named TransactionHost but without the methods the library calls is an error.
 */
function readProvider(wrapper: ProviderWrapper, dataSource: DataSource): TransactionHostLike | undefined {
  let host: Partial<TransactionHostLike>;
  let usable: boolean;
  let named: boolean;
  try {
    host = wrapper.instance as Partial<TransactionHostLike>;
    if (typeof host !== 'object' || host === null || !('tx' in host)) return undefined;
    // Outside a transaction `tx` is the adapter's fallback: for TypeORM, the DataSource's manager.
    if ((host.tx as Partial<EntityManager> | null | undefined)?.connection !== dataSource) return undefined;
    usable = typeof host.withTransaction === 'function' && typeof host.isTransactionActive === 'function';
    named = host.constructor?.name === 'TransactionHost';
  } catch {
    return undefined; // e.g. a strict nestjs-cls proxy provider read outside its context: not a host
  }
  if (usable) return host as TransactionHostLike;
  if (named) throw new InvalidOptionsError(messages.unusableTransactionHost());
  return undefined;
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
