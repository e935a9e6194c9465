import { INestApplicationContext, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { Durable, DurableClient, Step, Workflow, WorkflowFailedError } from 'nest-durable';
import { createTestDatabase } from './support/database';
import { createDurableApp } from './support/durable-app';
import { dataSourceOf, eventually, gate, Gate } from './support/helpers';

/** A saga: reserve, create, configure; each has an undo; `failAt` makes one step fail for good. */
@Injectable()
class Saga {
  failAt = new Map<string, string>();
  hold = new Map<string, Gate>();
  undoFails = new Set<string>();
  log: string[] = [];
  signals = new Map<string, AbortSignal>();

  @Step({ compensate: 'releaseQuota' })
  async reserveQuota(tenant: string): Promise<string> {
    this.log.push(`reserve ${tenant}`);
    return `quota-${tenant}`;
  }

  @Step({ compensate: 'deleteDatabase', retry: { maxAttempts: 1 } })
  async createDatabase(tenant: string, size: number): Promise<{ id: string }> {
    if (this.failAt.get(tenant) === 'createDatabase') throw new Error('provider refused');
    this.log.push(`create ${tenant} ${size}`);
    return { id: `db-${tenant}` };
  }

  @Step({ retry: { maxAttempts: 1 } })
  async configureDns(tenant: string): Promise<void> {
    const { signal } = Durable.context().step!;
    this.signals.set(tenant, signal);
    await this.hold.get(tenant)?.promise;
    if (signal.aborted) {
      this.log.push(`dns ${tenant} aborted: ${(signal.reason as Error).name}`);
      throw signal.reason;
    }
    if (this.failAt.get(tenant) === 'configureDns') throw new Error('dns down');
    this.log.push(`dns ${tenant}`);
  }

  /** Undo methods receive the step's output, then its arguments. */
  @Step({ retry: { maxAttempts: 2, initialDelay: 10 } })
  async releaseQuota(output: string, tenant: string): Promise<void> {
    if (this.undoFails.has(tenant)) throw new Error('quota service down');
    this.log.push(`release ${tenant} ${output}`);
  }

  async deleteDatabase(output: { id: string }, tenant: string, size: number): Promise<void> {
    this.log.push(`delete ${tenant} ${output.id} ${size} in ${Durable.context().step!.key}`);
  }

  @Workflow()
  async provision(tenant: string): Promise<string> {
    await this.reserveQuota(tenant);
    await this.createDatabase(tenant, 10);
    await this.configureDns(tenant);
    return 'ready';
  }
}

describe('compensation (sagas)', () => {
  let database: { url: string; drop(): Promise<void> };
  let app: INestApplicationContext;
  let client: DurableClient;
  let saga: Saga;
  let ds: DataSource;

  beforeAll(async () => {
    database = await createTestDatabase();
    app = await createDurableApp({
      url: database.url,
      providers: [Saga],
      durable: { leaseMs: 2_000, heartbeatMs: 500, pollIntervalMs: 100 },
    });
    client = app.get(DurableClient);
    saga = app.get(Saga);
    ds = dataSourceOf(app);
  });

  afterAll(async () => {
    await app?.close();
    await database?.drop();
  });

  const keys = async (id: string) => (await client.status(id))!.steps.map((s) => `${s.key}:${s.status}`);

  it('a failure undoes the completed steps in reverse order, then fails the run', async () => {
    saga.failAt.set('t1', 'configureDns');
    const handle = await client.start('provision', ['t1'], { id: 'saga-fail' });
    await expect(handle.result({ timeout: '60s' })).rejects.toBeInstanceOf(WorkflowFailedError);
    expect(saga.log.filter((line) => line.includes('t1'))).toEqual([
      'reserve t1',
      'create t1 10',
      'delete t1 db-t1 10 in $undo:createDatabase#1#1',
      'release t1 quota-t1',
    ]);
    expect(await keys('saga-fail')).toEqual([
      'reserveQuota#1:succeeded',
      'createDatabase#1:succeeded',
      'configureDns#1:failed',
      '$undo:createDatabase#1#1:succeeded',
      '$undo:reserveQuota#1#1:succeeded',
    ]);
    const info = await client.status('saga-fail');
    expect(info).toMatchObject({ status: 'failed', error: { message: 'dns down' } });
  });

  it('a step that failed is not compensated; a failing undo is recorded and the others still run', async () => {
    saga.failAt.set('t2', 'createDatabase');
    saga.undoFails.add('t2');
    const handle = await client.start('provision', ['t2'], { id: 'saga-undo-fails' });
    await expect(handle.result({ timeout: '60s' })).rejects.toBeInstanceOf(WorkflowFailedError);
    expect(await keys('saga-undo-fails')).toEqual([
      'reserveQuota#1:succeeded',
      'createDatabase#1:failed',
      '$undo:reserveQuota#1#1:failed',
    ]);
    const undo = (await client.status('saga-undo-fails'))!.steps[2];
    expect(undo).toMatchObject({ attempts: 2, error: { message: 'quota service down' } });
  });

  it('cancel undoes the completed steps durably and leaves the run cancelled', async () => {
    const held = gate();
    saga.hold.set('t3', held);
    const handle = await client.start('provision', ['t3'], { id: 'saga-cancel' });
    await eventually(
      () => keys('saga-cancel'),
      (k) => k.length === 2,
      60_000,
    );
    expect(await client.cancel('saga-cancel', 'customer left')).toBe(true);
    // The owner hears of the cancel through NOTIFY and aborts the step in flight.
    await eventually(
      async () => saga.signals.get('t3')?.aborted,
      (aborted) => aborted === true,
      60_000,
    );
    held.open();
    await expect(handle.result({ timeout: '60s' })).rejects.toMatchObject({ name: 'RunCancelledError' });
    const done = await eventually(
      () => keys('saga-cancel'),
      (k) => k.length === 4,
      60_000,
    );
    expect(done).toEqual([
      'reserveQuota#1:succeeded',
      'createDatabase#1:succeeded',
      '$undo:createDatabase#1#1:succeeded',
      '$undo:reserveQuota#1#1:succeeded',
    ]);
    const [run] = await ds.query(
      `SELECT status, compensating, executor, error FROM durable.runs WHERE id = 'saga-cancel'`,
    );
    expect(run).toMatchObject({
      status: 'cancelled',
      compensating: false,
      executor: null,
      error: { message: 'customer left' },
    });
    // The step in flight saw its AbortSignal fire with the cancellation, and recorded nothing.
    expect(saga.log).toContain('dns t3 aborted: RunCancelledError');
    expect(saga.log).not.toContain('dns t3');
  });

  it('an undo method that does not exist fails at startup', async () => {
    @Injectable()
    class Broken {
      @Step({ compensate: 'nope' })
      async act(): Promise<void> {}
    }
    await expect(createDurableApp({ url: database.url, providers: [Broken] })).rejects.toThrow(
      "Broken.act declares compensate: 'nope'",
    );
  });
});
