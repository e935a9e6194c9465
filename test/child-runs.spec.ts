import { INestApplicationContext, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { Durable, DurableClient, Step, Workflow } from 'nest-durable';
import { createTestDatabase, TestDatabase } from './support/database';
import { createDurableApp } from './support/durable-app';
import { dataSourceOf, requeueRun, sql, waitUntil } from './support/helpers';

@Injectable()
class Family {
  @Step() async double(x: number): Promise<number> {
    return x * 2;
  }

  @Workflow() async leaf(x: number): Promise<number> {
    return this.double(x);
  }

  @Workflow() async sleepyLeaf(x: number): Promise<number> {
    await Durable.sleep('1500ms');
    return x;
  }

  @Workflow() async failingLeaf(): Promise<number> {
    throw new Error('leaf broke');
  }

  @Workflow() async parentOf(x: number): Promise<number> {
    return (await this.leaf(x)) + 1;
  }

  @Workflow() async grandparent(x: number): Promise<number> {
    return (await this.parentOf(x)) + 100;
  }

  @Workflow() async sleepyParent(x: number): Promise<number> {
    return (await this.sleepyLeaf(x)) + 1;
  }

  @Workflow() async fanOut(n: number): Promise<number> {
    const results = await Promise.all(Array.from({ length: n }, (_, i) => this.leaf(i)));
    return results.reduce((sum, value) => sum + value, 0);
  }

  @Workflow() async catchesChild(): Promise<string> {
    try {
      await this.failingLeaf();
      return 'no error';
    } catch (error) {
      return `${(error as Error).name}: ${(error as Error).message}`;
    }
  }
}

describe('child runs', () => {
  let database: TestDatabase;
  let app: INestApplicationContext;
  let client: DurableClient;
  let ds: DataSource;

  beforeAll(async () => {
    database = await createTestDatabase();
    // Two slots: a parent that held its slot while waiting would starve its children.
    app = await createDurableApp({
      url: database.url,
      providers: [Family],
      durable: { concurrency: 2, pollIntervalMs: 200 },
    });
    client = app.get(DurableClient);
    ds = dataSourceOf(app);
  });

  afterAll(async () => {
    await app?.close();
    await database?.drop();
  });

  it('two parents waiting for their children fit in two slots: parents park, children run', async () => {
    const handles = await Promise.all([
      client.start<number>('sleepyParent', [1], { id: 'p-1' }),
      client.start<number>('sleepyParent', [2], { id: 'p-2' }),
    ]);
    await expect(Promise.all(handles.map((h) => h.result({ timeout: '60s' })))).resolves.toEqual([2, 3]);
    // Each parent parked while its child ran: claimed again when the child finished.
    const parents = await sql<{ id: string; attempts: number }>(
      ds,
      `SELECT id, attempts FROM durable.runs WHERE id IN ('p-1', 'p-2') ORDER BY id`,
    );
    expect(parents.every((p) => p.attempts >= 2)).toBe(true);
    const steps = (await client.status('p-1'))!.steps;
    expect(steps.map((s) => [s.key, s.kind, s.status, s.output])).toEqual([
      ['sleepyLeaf#1', 'child', 'succeeded', 1],
    ]);
  });

  it('a parent → child → grandchild tree finishes with two slots', async () => {
    const handle = await client.start<number>('grandparent', [5], { id: 'gp-1' });
    await expect(handle.result({ timeout: '60s' })).resolves.toBe(111);
    const child = await client.status('gp-1:parentOf#1');
    expect(child).toMatchObject({ status: 'succeeded', output: 11 });
    const grandchild = await client.status('gp-1:parentOf#1:leaf#1');
    expect(grandchild).toMatchObject({ status: 'succeeded', output: 10 });
  });

  it('fans out 1,000 children from one parent with two slots', async () => {
    const n = 1_000;
    const handle = await client.start<number>('fanOut', [n], { id: 'fan-1000' });
    await expect(handle.result({ timeout: '240s' })).resolves.toBe(n * (n - 1)); // sum of 2i
    const [children] = await sql<{ n: number }>(
      ds,
      `SELECT count(*)::int AS n FROM durable.runs WHERE parent_id = 'fan-1000' AND status = 'succeeded'`,
    );
    expect(children.n).toBe(n);
    const [steps] = await sql<{ n: number }>(
      ds,
      `SELECT count(*)::int AS n FROM durable.steps WHERE run_id = 'fan-1000' AND kind = 'child' AND status = 'succeeded'`,
    );
    expect(steps.n).toBe(n);
  }, 300_000);

  it("a child's failure is its parent's step error, caught like any step error, and replayed", async () => {
    const handle = await client.start<string>('catchesChild', [], { id: 'catch-1' });
    await expect(handle.result({ timeout: '30s' })).resolves.toBe('Error: leaf broke');
    const [step] = (await client.status('catch-1'))!.steps;
    expect(step).toMatchObject({ key: 'failingLeaf#1', kind: 'child', status: 'failed' });
    expect(step.error).toMatchObject({ name: 'Error', message: 'leaf broke' });
    // Replayed from the history: the recorded error comes back, the child is not started again.
    const claims = (await client.status('catch-1'))!.attempts;
    await requeueRun(ds, 'catch-1');
    await waitUntil(
      'the replayed parent to finish',
      async () => {
        const run = await client.status('catch-1');
        return run!.status === 'succeeded' && run!.attempts === claims + 1 ? run : undefined;
      },
      30_000,
    );
    expect((await client.status('catch-1'))!.output).toBe('Error: leaf broke');
    expect(await client.status('catch-1:failingLeaf#1')).toMatchObject({ status: 'failed', attempts: 1 });
  });

  it('a cancelled child fails the step of a parent that goes on', async () => {
    const handle = await client.start<number>('sleepyParent', [7], { id: 'p-cancel' });
    await waitUntil(
      'the child to exist',
      async () => ((await client.status('p-cancel:sleepyLeaf#1')) ? true : undefined),
      30_000,
    );
    await client.cancel('p-cancel:sleepyLeaf#1', 'not needed');
    await expect(handle.result({ timeout: '30s' })).rejects.toMatchObject({
      name: 'WorkflowFailedError',
      cause: { name: 'RunCancelledError', message: 'not needed' },
    });
    const parent = await client.status('p-cancel');
    expect(parent!.steps.map((s) => [s.key, s.status])).toEqual([['sleepyLeaf#1', 'failed']]);
  });
});
