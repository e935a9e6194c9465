/**
 * Connection loss at the worst moment, in a process that runs the library: a backend terminated
 * right behind its reply, so that the client, just handed by the pool to a waiting TypeORM connect
 * (which listens for errors only after a promise settles), reads the termination notice in the same
 * read as the reply. node-postgres then emits 'error' on a client nobody listens to, which ends the
 * process unless the library guards the pool's connections. Through test/support/pg-proxy.ts.
 */
import { INestApplicationContext } from '@nestjs/common';
import type { Pool } from 'pg';
import { createTestDatabase, TestDatabase } from './support/database';
import { createDurableApp } from './support/durable-app';
import { query } from './support/fault-workload';
import { dataSourceOf } from './support/helpers';
import { PgProxy } from './support/pg-proxy';

jest.setTimeout(60_000);

let database: TestDatabase;
let proxy: PgProxy;
let app: INestApplicationContext | undefined;

beforeAll(async () => {
  database = await createTestDatabase();
  const target = new URL(database.url);
  proxy = await PgProxy.start({ host: target.hostname, port: Number(target.port || 5432) });
});

afterEach(async () => {
  await app?.close();
  app = undefined;
});

afterAll(async () => {
  await proxy?.close();
  await database?.drop();
});

const terminate = (pid: number) => query(database.url, 'SELECT pg_terminate_backend($1)', [pid]);

test('a connection terminated as the pool hands it to a TypeORM connect does not end the process', async () => {
  app = await createDurableApp({
    url: proxy.urlFor(database.url),
    providers: [],
    durable: { worker: false },
    poolSize: 1,
  });
  const dataSource = dataSourceOf(app);
  const pool = (dataSource.driver as unknown as { master: Pool }).master;
  const uncaught: Error[] = [];
  const onUncaught = (error: Error) => uncaught.push(error);
  // Jest turns an uncaught exception into a failure anyway; this also names it in the assertion.
  process.prependListener('uncaughtException', onUncaught);
  try {
    const cut = proxy.terminateAfterReply(/^SELECT 'released'/, terminate);
    // A statement straight on the pool, as the library's checkpoints are, while TypeORM waits for the
    // only connection: the reply releases the client to TypeORM, the termination notice follows.
    const direct = pool.query(`SELECT 'released' AS x`);
    const runner = dataSource.createQueryRunner();
    const connecting = runner.connect();
    expect((await direct).rows).toEqual([{ x: 'released' }]);
    await cut.fired;
    await connecting;
    // The connection TypeORM got is dead: its statement fails, and the pool discards it on release.
    await expect(runner.query('SELECT 1')).rejects.toThrow();
    await runner.release();
    expect(await dataSource.query(`SELECT 'after' AS x`)).toEqual([{ x: 'after' }]);
    expect(uncaught).toEqual([]);
  } finally {
    process.removeListener('uncaughtException', onUncaught);
  }
});

test('a failed pooled connection is logged without its connection string', async () => {
  const logged: string[] = [];
  const write = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    logged.push(String(chunk));
    return true;
  });
  try {
    app = await createDurableApp({
      url: proxy.urlFor(database.url),
      providers: [],
      durable: { worker: false },
      logLevels: ['warn'],
      poolSize: 1,
    });
    const dataSource = dataSourceOf(app);
    const cut = proxy.terminateAfterReply(/^SELECT 'idle'/, terminate);
    await dataSource.query(`SELECT 'idle' AS x`);
    await cut.fired;
    const deadline = Date.now() + 10_000;
    while (!logged.some((line) => line.includes('57P01')) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } finally {
    write.mockRestore();
  }
  const line = logged.find((entry) => entry.includes('database connection of the pool failed'));
  expect(line).toContain('57P01');
  expect(logged.join('')).not.toMatch(/postgres(ql)?:\/\/|password/i);
});
