import { INestApplicationContext, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { DurableClient, Step, Workflow } from 'nest-durable';
import { createTestDatabase } from './support/database';
import { createDurableApp } from './support/durable-app';
import { dataSourceOf, sql, within } from './support/helpers';

/** Each app gets its own instance: the counters tell which process executed what. */
@Injectable()
class Orders {
  readonly executions = new Map<string, number>();

  @Workflow()
  async placeOrder(orderId: string) {
    const reserved = await this.reserve(orderId);
    return { orderId, reserved };
  }

  @Step()
  async reserve(orderId: string) {
    this.executions.set(orderId, (this.executions.get(orderId) ?? 0) + 1);
    await new Promise((resolve) => setTimeout(resolve, 50)); // keep the run in flight while the others start
    return `reservation for ${orderId}`;
  }
}

let db: { url: string; drop(): Promise<void> };
let appA: INestApplicationContext;
let appB: INestApplicationContext;
let ds: DataSource;

beforeAll(async () => {
  db = await createTestDatabase();
  // Two replicas of one app on one database. In one process they need distinct executor ids (the
  // default, hostname-pid, would be shared and make each treat the other's runs as its own).
  // A poll interval of 10 s puts the result waiters' fallback poll (10 x pollIntervalMs) at 100 s, far
  // beyond the waits below: a handle resolves within them only through NOTIFY.
  const durable = { pollIntervalMs: 10_000 };
  appA = await createDurableApp({
    url: db.url,
    providers: [Orders],
    durable: { ...durable, executorId: 'replica-a' },
  });
  appB = await createDurableApp({
    url: db.url,
    providers: [Orders],
    durable: { ...durable, executorId: 'replica-b' },
  });
  ds = dataSourceOf(appA);
});

afterAll(async () => {
  await appA?.close();
  await appB?.close();
  await db?.drop();
});

const rowsWithId = async (id: string) =>
  (await sql<{ n: number }>(ds, 'SELECT count(*)::int AS n FROM durable.runs WHERE id = $1', [id]))[0].n;
const executionsOf = (id: string) =>
  [appA, appB].reduce((sum, app) => sum + (app.get(Orders).executions.get(id) ?? 0), 0);

it('50 concurrent starts with one id make exactly one run, and every handle gets its result', async () => {
  const client = appA.get(DurableClient);
  const id = 'same';
  const handles = await Promise.all(
    Array.from({ length: 50 }, () => client.start('placeOrder', [id], { id })),
  );
  expect(new Set(handles.map((h) => h.id))).toEqual(new Set([id]));
  const results = await within(60_000, Promise.all(handles.map((h) => h.result())));
  expect(results).toEqual(
    Array.from({ length: 50 }, () => ({ orderId: id, reserved: `reservation for ${id}` })),
  );
  expect(await rowsWithId(id)).toBe(1);
  expect(executionsOf(id)).toBe(1);
  expect(await appA.get(DurableClient).status(id)).toMatchObject({ status: 'succeeded', attempts: 1 });
});

it('concurrent starts with one id from two app instances make exactly one run', async () => {
  const [a, b] = [appA.get(DurableClient), appB.get(DurableClient)];
  const id = 'same-across-apps';
  const handles = await Promise.all(
    Array.from({ length: 50 }, (_, i) =>
      (i % 2 === 0 ? a : b).start(Orders.prototype.placeOrder, [id], { id }),
    ),
  );
  const results = await within(60_000, Promise.all(handles.map((h) => h.result())));
  expect(new Set(results.map((r) => JSON.stringify(r)))).toEqual(
    new Set([JSON.stringify({ orderId: id, reserved: `reservation for ${id}` })]),
  );
  expect(await rowsWithId(id)).toBe(1);
  expect(executionsOf(id)).toBe(1);
  const info = await b.status(id);
  expect(info).toMatchObject({ status: 'succeeded', attempts: 1 });
  expect(info!.steps.map((s) => [s.key, s.attempts])).toEqual([['reserve#1', 1]]);
});

it.each([1, 2, 3])(
  'many ids started concurrently from both apps (round %i): one run each, executed once, every handle woken promptly',
  async (round) => {
    const [a, b] = [appA.get(DurableClient), appB.get(DurableClient)];
    const ids = Array.from({ length: 25 }, (_, i) => `batch-${round}-${i}`);
    const starts = ids.flatMap((id) =>
      Array.from({ length: 6 }, (_, i) => ({
        id,
        app: i % 2 === 0 ? 'A' : 'B',
        client: i % 2 === 0 ? a : b,
      })),
    );
    const handles = await Promise.all(starts.map((s) => s.client.start('placeOrder', [s.id], { id: s.id })));
    const waiting = new Set(starts.map((_, i) => i));
    // Healthy, this takes well under a second or two. A waiter that misses the run's 'done' notification
    // only wakes at its fallback poll (100 s here): that is what the bound catches, with room for a slow machine.
    const results = await within(
      60_000,
      Promise.all(handles.map((h, i) => h.result().finally(() => waiting.delete(i)))),
    ).catch(async (error: Error) => {
      const rows = await sql<{ id: string; status: string }>(
        ds,
        `SELECT id, status FROM durable.runs WHERE id LIKE $1 ORDER BY id`,
        [`batch-${round}-%`],
      );
      const stuck = [...waiting].map((i) => `${starts[i].id} (handle of app ${starts[i].app})`);
      throw new Error(
        `${error.message}; handles still waiting: ${stuck.join(', ')}; ` +
          `run statuses: ${rows.map((r) => `${r.id}=${r.status}`).join(' ')}`,
      );
    });
    expect(results).toEqual(starts.map((s) => ({ orderId: s.id, reserved: `reservation for ${s.id}` })));
    for (const id of ids) {
      expect(await rowsWithId(id)).toBe(1);
      expect(executionsOf(id)).toBe(1);
    }
  },
);
