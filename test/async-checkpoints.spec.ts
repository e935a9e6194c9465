import { INestApplicationContext, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { Durable, DurableClient, Step, Workflow } from 'nest-durable';
import { createTestDatabase, TestDatabase } from './support/database';
import { createDurableApp } from './support/durable-app';
import { dataSourceOf, gate, sql, waitUntil } from './support/helpers';

/**
 * The asyncCheckpoints option on an ordinary server. A checkpoint the database lost (here deleted, as a
 * crash of PostgreSQL would have dropped it; test/async-checkpoints-crash.spec.ts does the real crash)
 * is noticed by the run's next write, which commits nothing: a transactional step's business row rolls
 * back with it, and the run resumes from what the database holds.
 */

@Injectable()
class Flows {
  readonly held = gate();
  readonly holding = gate();
  readonly beforeEvent = gate();
  readonly atEvent = gate();
  readonly executions = new Map<string, number>();

  /** Publishes an event right after an asynchronous checkpoint (held there on its first execution). */
  @Workflow('asyncEvent')
  async publish(n: number): Promise<number> {
    const a = await this.first(n);
    const b = await this.second(a);
    if (this.count(`${Durable.context().runId} second#1`) === 1) {
      this.atEvent.open();
      await this.beforeEvent.promise;
    }
    await Durable.setEvent('stage', b);
    return this.last(b);
  }

  @Workflow('asyncFlow')
  async flow(n: number): Promise<number> {
    const a = await this.first(n);
    const b = await this.second(a);
    const c = await this.book(b);
    return this.last(c);
  }

  count(key: string): number {
    return this.executions.get(key) ?? 0;
  }

  private counted(): void {
    const { runId, step } = Durable.context();
    const key = `${runId} ${step!.key}`;
    this.executions.set(key, this.count(key) + 1);
  }

  @Step() async first(n: number) {
    this.counted();
    return n + 1;
  }
  @Step() async second(n: number) {
    this.counted();
    return n + 1;
  }
  @Step({ transactional: true }) async book(n: number) {
    this.counted();
    const { runId } = Durable.context();
    await Durable.manager().query('INSERT INTO bookings (run_id) VALUES ($1)', [runId]);
    if (runId === 'lost' && this.count(`${runId} book#1`) === 1) {
      this.holding.open();
      await this.held.promise;
    }
    return n + 1;
  }
  @Step() async last(n: number) {
    this.counted();
    return n + 1;
  }
}

let db: TestDatabase;
let app: INestApplicationContext;
let ds: DataSource;

beforeAll(async () => {
  db = await createTestDatabase();
  app = await createDurableApp({
    url: db.url,
    providers: [Flows],
    durable: { asyncCheckpoints: true, pollIntervalMs: 100 },
  });
  ds = dataSourceOf(app);
  await ds.query('CREATE TABLE bookings (run_id text NOT NULL)');
});

afterAll(async () => {
  await app?.close();
  await db?.drop();
});

it('runs to the same outcome and history as without the option', async () => {
  const handle = await app.get(DurableClient).start('asyncFlow', [0], { id: 'plain' });
  expect(await handle.result()).toBe(4);
  const steps = await sql<{ key: string; status: string }>(
    ds,
    `SELECT key, status FROM durable.steps WHERE run_id = 'plain' ORDER BY seq`,
  );
  expect(steps).toEqual(
    ['first#1', 'second#1', 'book#1', 'last#1'].map((key) => ({ key, status: 'succeeded' })),
  );
});

it('a lost asynchronous checkpoint: the next write commits nothing and the run resumes from the database', async () => {
  const flows = app.get(Flows);
  const id = 'lost';
  const handle = await app.get(DurableClient).start('asyncFlow', [10], { id });
  await flows.holding.promise; // inside book's transaction, its business row written
  // The database loses the asynchronously committed checkpoint of `second`.
  await sql(ds, `DELETE FROM durable.steps WHERE run_id = $1 AND key = 'second#1'`, [id]);
  flows.held.open();

  expect(await handle.result({ timeout: 30_000 })).toBe(14);
  // book's first transaction was refused and rolled back: one business row, from its second execution.
  expect(
    (await sql<{ n: number }>(ds, 'SELECT count(*)::int AS n FROM bookings WHERE run_id = $1', [id]))[0].n,
  ).toBe(1);
  expect(flows.count(`${id} first#1`)).toBe(1);
  expect(flows.count(`${id} second#1`)).toBe(2);
  expect(flows.count(`${id} book#1`)).toBe(2);
  const run = await waitUntil(
    'the run to be recorded as claimed twice',
    async () => (await app.get(DurableClient).status(id)) ?? undefined,
    10_000,
  );
  expect(run).toMatchObject({ status: 'succeeded', attempts: 2 });
  expect(run.steps.map((s) => s.key)).toEqual(['first#1', 'second#1', 'book#1', 'last#1']);
});

it('a lost asynchronous checkpoint: an event published after it is not appended on top of it', async () => {
  const flows = app.get(Flows);
  const id = 'lost-before-event';
  const handle = await app.get(DurableClient).start('asyncEvent', [20], { id });
  await flows.atEvent.promise; // second recorded (asynchronously), the event not yet published
  await sql(ds, `DELETE FROM durable.steps WHERE run_id = $1 AND key = 'second#1'`, [id]);
  flows.beforeEvent.open();

  expect(await handle.result({ timeout: 30_000 })).toBe(23);
  expect(flows.count(`${id} second#1`)).toBe(2);
  const events = await sql<{ key: string; value: unknown }>(
    ds,
    'SELECT key, value FROM durable.run_events WHERE run_id = $1',
    [id],
  );
  expect(events).toEqual([{ key: 'stage', value: 22 }]);
  const run = await app.get(DurableClient).status(id);
  expect(run).toMatchObject({ status: 'succeeded', attempts: 2 });
  expect(run!.steps.map((s) => s.key)).toEqual(['first#1', 'second#1', '$event:stage#1', 'last#1']);
});
