import { INestApplicationContext, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { Durable, DurableClient, RunStateError, Step, Workflow } from 'nest-durable';
import { createTestDatabase, TestDatabase } from './support/database';
import { createDurableApp } from './support/durable-app';
import { dataSourceOf, gate, Gate, sql, waitUntil } from './support/helpers';

@Injectable()
class Orders {
  broken = true;
  /** Opened by the test to let a step fail once the other one committed. */
  failGate: Gate = gate();

  @Step({ retry: { maxAttempts: 1 } }) async failLater(): Promise<string> {
    await this.failGate.promise;
    if (this.broken) throw new Error('carrier down');
    return 'shipped';
  }

  @Step({ transactional: true }) async charge(orderId: string): Promise<string> {
    await Durable.manager().query(`INSERT INTO resume_effects (run_id, label) VALUES ($1, 'charge')`, [
      orderId,
    ]);
    return 'charged';
  }

  @Step({ retry: { maxAttempts: 2, initialDelay: 10 } }) async flaky(): Promise<string> {
    if (this.broken) throw new Error(`flaky attempt ${Durable.context().step!.attempt}`);
    return 'ok';
  }

  @Step({ compensate: 'release' }) async reserve(orderId: string): Promise<string> {
    return `reservation-${orderId}`;
  }

  @Step() async release(reservation: string): Promise<string> {
    return `released ${reservation}`;
  }

  @Workflow() async parallelOrder(orderId: string): Promise<string[]> {
    // failLater starts first; charge starts after it and commits before failLater fails.
    return Promise.all([this.failLater(), this.charge(orderId)]);
  }

  @Workflow() async retried(): Promise<string> {
    return this.flaky();
  }

  @Workflow() async compensated(orderId: string): Promise<string> {
    await this.reserve(orderId);
    return this.flaky();
  }

  @Workflow() async reserveThenWait(orderId: string): Promise<string> {
    await this.reserve(orderId);
    await Durable.waitForSignal('go');
    return 'done';
  }

  @Workflow() async waitsThenCharges(orderId: string): Promise<string> {
    await Durable.waitForSignal('go');
    return this.charge(orderId);
  }
}

describe('resume', () => {
  let database: TestDatabase;
  let app: INestApplicationContext;
  let client: DurableClient;
  let orders: Orders;
  let ds: DataSource;

  const effects = async (runId: string) =>
    (
      await sql<{ n: number }>(ds, `SELECT count(*)::int AS n FROM resume_effects WHERE run_id = $1`, [runId])
    )[0].n;
  const settle = (id: string, status: string) =>
    waitUntil(
      `run ${id} to be ${status}`,
      async () => ((await client.status(id))?.status === status ? true : undefined),
      30_000,
    );

  beforeAll(async () => {
    database = await createTestDatabase();
    app = await createDurableApp({
      url: database.url,
      providers: [Orders],
      durable: { pollIntervalMs: 200 },
    });
    client = app.get(DurableClient);
    orders = app.get(Orders);
    ds = dataSourceOf(app);
    await sql(ds, `CREATE TABLE resume_effects (run_id text NOT NULL, label text NOT NULL)`);
  });

  afterAll(async () => {
    await app?.close();
    await database?.drop();
  });

  beforeEach(() => {
    orders.broken = true;
    orders.failGate = gate();
  });

  it('keeps a parallel step that committed after the failing one started: its rows exist once', async () => {
    const handle = await client.start('parallelOrder', ['o-1'], { id: 'o-1' });
    await waitUntil(
      'the charge to commit',
      async () => ((await effects('o-1')) === 1 ? true : undefined),
      30_000,
    );
    orders.failGate.open();
    await expect(handle.result({ timeout: '30s' })).rejects.toMatchObject({
      cause: { message: 'carrier down' },
    });

    orders.broken = false;
    await client.resume('o-1');
    await expect(client.handle('o-1').result({ timeout: '30s' })).resolves.toEqual(['shipped', 'charged']);
    expect(await effects('o-1')).toBe(1);
    const steps = (await client.status('o-1'))!.steps;
    expect(steps.map((s) => [s.key, s.status, s.attempts])).toEqual([
      ['charge#1', 'succeeded', 1],
      ['failLater#1', 'succeeded', 2],
    ]);
  });

  it('does not depend on the app clock: a clock set back an hour between steps changes nothing', async () => {
    const realNow = Date.now;
    const handle = await client.start('parallelOrder', ['o-2'], { id: 'o-2' });
    await waitUntil(
      'the charge to commit',
      async () => ((await effects('o-2')) === 1 ? true : undefined),
      30_000,
    );
    Date.now = () => realNow() - 3_600_000;
    try {
      orders.failGate.open();
      await expect(handle.result({ timeout: '30s' })).rejects.toMatchObject({ name: 'WorkflowFailedError' });
      orders.broken = false;
      await client.resume('o-2');
      await expect(client.handle('o-2').result({ timeout: '30s' })).resolves.toEqual(['shipped', 'charged']);
    } finally {
      Date.now = realNow;
    }
    expect(await effects('o-2')).toBe(1);
  });

  it('keeps the record of the failed attempts and gives the resumed step a fresh retry budget', async () => {
    const handle = await client.start('retried', [], { id: 'r-1' });
    await expect(handle.result({ timeout: '30s' })).rejects.toMatchObject({
      cause: { message: 'flaky attempt 2' },
    });
    orders.broken = false;
    await client.resume('r-1');
    await expect(client.handle('r-1').result({ timeout: '30s' })).resolves.toBe('ok');
    const [step] = (await client.status('r-1'))!.steps;
    expect(step).toMatchObject({ key: 'flaky#1', status: 'succeeded', attempts: 3 });
    expect(step.error).toMatchObject({ message: 'flaky attempt 2' });
  });

  it('refuses a run whose compensations ran, and leaves it as it was', async () => {
    const handle = await client.start('compensated', ['o-3'], { id: 'o-3' });
    await expect(handle.result({ timeout: '30s' })).rejects.toMatchObject({ name: 'WorkflowFailedError' });
    const before = (await client.status('o-3'))!;
    expect(before.steps.map((s) => s.key)).toEqual(['reserve#1', 'flaky#1', '$undo:reserve#1#1']);
    orders.broken = false;
    const error = await client.resume('o-3').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RunStateError);
    expect((error as Error).message).toMatch(/compensations ran/);
    const after = (await client.status('o-3'))!;
    expect({ status: after.status, steps: after.steps }).toEqual({ status: 'failed', steps: before.steps });
  });

  it('resumes a cancelled run that had nothing to undo: it goes on where it stopped', async () => {
    const handle = await client.start('waitsThenCharges', ['o-4'], { id: 'o-4' });
    await settle('o-4', 'waiting');
    await client.cancel('o-4', 'changed my mind');
    await expect(handle.result({ timeout: '30s' })).rejects.toMatchObject({ name: 'RunCancelledError' });
    await client.resume('o-4');
    await client.signal('o-4', 'go');
    await expect(client.handle('o-4').result({ timeout: '30s' })).resolves.toBe('charged');
    expect(await effects('o-4')).toBe(1);
  });

  it('refuses a cancelled run whose compensations ran', async () => {
    const handle = await client.start('reserveThenWait', ['o-5'], { id: 'o-5' });
    await settle('o-5', 'waiting');
    await client.cancel('o-5');
    await expect(handle.result({ timeout: '30s' })).rejects.toMatchObject({ name: 'RunCancelledError' });
    await waitUntil(
      'the compensation to finish',
      async () => ((await client.status('o-5'))!.compensating ? undefined : true),
      30_000,
    );
    await expect(client.resume('o-5')).rejects.toBeInstanceOf(RunStateError);
    expect((await client.status('o-5'))!.status).toBe('cancelled');
  });
});
