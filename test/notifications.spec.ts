import { INestApplicationContext, Injectable } from '@nestjs/common';
import { Client } from 'pg';
import type { Pool } from 'pg';
import { DurableClient, Step, Workflow } from 'nest-durable';
import { createTestDatabase, TestDatabase } from './support/database';
import { createDurableApp } from './support/durable-app';
import { dataSourceOf, waitUntil, within } from './support/helpers';

/**
 * The LISTEN connection: a run started by a client-only process reaches the worker through NOTIFY (the
 * fallback poll is set far beyond the test), the connection sits beside the app's pool rather than in
 * it, and it comes back after the server ends it.
 */
@Injectable()
class Doubler {
  @Workflow()
  async double(x: number) {
    return this.times2(x);
  }

  @Step()
  async times2(x: number) {
    return x * 2;
  }
}

const NO_POLL = { leaseMs: 600_000, heartbeatMs: 100_000, pollIntervalMs: 100_000 };

let db: TestDatabase;
let worker: INestApplicationContext;
let starter: INestApplicationContext;
let admin: Client;

beforeAll(async () => {
  db = await createTestDatabase();
  worker = await createDurableApp({
    url: db.url,
    providers: [Doubler],
    applicationName: 'notify-worker',
    poolSize: 2,
    durable: { ...NO_POLL, executorId: 'notify-worker' },
  });
  starter = await createDurableApp({
    url: db.url,
    providers: [Doubler],
    applicationName: 'notify-starter',
    durable: { ...NO_POLL, executorId: 'notify-starter', worker: false },
  });
  admin = new Client({ connectionString: db.url });
  await admin.connect();
});

afterAll(async () => {
  await admin?.end();
  await starter?.close();
  await worker?.close();
  await db?.drop();
});

/** Backend pids of the worker's sessions in LISTEN. */
async function listeners(): Promise<number[]> {
  const { rows } = await admin.query<{ pid: number }>(
    `SELECT pid FROM pg_stat_activity
     WHERE datname = current_database() AND application_name = 'notify-worker' AND query LIKE 'LISTEN %'`,
  );
  return rows.map((row) => row.pid);
}

async function startAndAwait(x: number): Promise<number> {
  const handle = await starter.get(DurableClient).start('double', [x]);
  // Far below the 100 s poll: only NOTIFY can wake it within this (generous) wait.
  return within(60_000, handle.result(), `run ${handle.id} (woken by NOTIFY only)`) as Promise<number>;
}

it('wakes the worker through NOTIFY, on a connection beside the pool', async () => {
  expect(await startAndAwait(21)).toBe(42);
  const [listener] = await listeners();
  expect(listener).toBeDefined();
  // The pool's own clients do not include the listening session: all of the pool stays for the work.
  const pool = (dataSourceOf(worker).driver as unknown as { master: Pool }).master as Pool & {
    _clients: { processID: number }[];
  };
  expect(pool._clients.map((c) => c.processID)).not.toContain(listener);
});

it('listens again after the server ends the LISTEN session', async () => {
  const [before] = await listeners();
  await admin.query('SELECT pg_terminate_backend($1)', [before]);
  const after = await waitUntil(
    'a new LISTEN session',
    async () => (await listeners()).find((pid) => pid !== before),
    60_000,
  );
  expect(after).not.toBe(before);
  expect(await startAndAwait(50)).toBe(100);
});
