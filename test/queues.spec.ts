/**
 * Queues in one process: priorities, delays, dedup keys, per-key limits, parked runs holding their
 * slot, and bad input (typed errors, nothing written). Multi-replica limits: queues-replicas.spec.ts.
 */
import { INestApplicationContext, Injectable } from '@nestjs/common';
import {
  Durable,
  DurableClient,
  InvalidArgumentError,
  InvalidOptionsError,
  resolveDurableOptions,
  Step,
  UnknownQueueError,
  Workflow,
} from 'nest-durable';
import { DurableStore } from 'nest-durable/persistence/durable.store';
import { ratePacing } from 'nest-durable/queues/queue-claim';
import { QueueStats } from 'nest-durable/telemetry';
import { WorkflowRegistry } from 'nest-durable/workflow.registry';
import { createTestDatabase, TestDatabase } from './support/database';
import { createDurableApp } from './support/durable-app';
import { dataSourceOf, gate, Gate, sql, uniqueId, waitUntil } from './support/helpers';

jest.setTimeout(120_000);

@Injectable()
class QueuedJobs {
  readonly gates = new Map<string, Gate>();
  /** Labels in the order their step started. */
  readonly order: string[] = [];

  gateOf(name: string): Gate {
    let g = this.gates.get(name);
    if (!g) this.gates.set(name, (g = gate()));
    return g;
  }

  @Step() async enter(label: string): Promise<Date> {
    this.order.push(label);
    return new Date();
  }

  /** Records its label, then waits for the gate of that label when `hold` is set. */
  @Workflow()
  async labelled(label: string, hold = false): Promise<string> {
    await this.enter(label);
    if (hold) await this.wait(label);
    return label;
  }

  @Step() async wait(label: string): Promise<void> {
    await this.gateOf(label).promise;
  }

  /** Sleeps durably between two steps: parked, it keeps its queue slot. */
  @Workflow()
  async napping(label: string): Promise<string> {
    await this.enter(`${label}:before`);
    await Durable.sleep('300ms');
    await this.enter(`${label}:after`);
    return label;
  }

  @Workflow({ queue: 'defaulted' })
  async onDefaultQueue(label: string): Promise<string> {
    await this.enter(label);
    return label;
  }
}

let database: TestDatabase;
let app: INestApplicationContext;
let client: DurableClient;
let jobs: QueuedJobs;

beforeAll(async () => {
  database = await createTestDatabase();
  app = await createDurableApp({
    url: database.url,
    providers: [QueuedJobs],
    durable: {
      pollIntervalMs: 100,
      executorId: 'queues-spec',
      queues: {
        solo: { concurrency: 1 },
        tenants: { perKeyConcurrency: 1 },
        defaulted: { concurrency: 2 },
        parked: { concurrency: 1 },
      },
    },
  });
  client = app.get(DurableClient);
  jobs = app.get(QueuedJobs);
});

afterAll(async () => {
  await app?.close();
  await database?.drop();
});

const runCount = async () =>
  (await sql<{ n: number }>(dataSourceOf(app), `SELECT count(*)::int AS n FROM durable.runs`))[0].n;

const started = (label: string) =>
  waitUntil(`step of ${label} to start`, async () => (jobs.order.includes(label) ? true : undefined), 30_000);

describe('queues in one process', () => {
  it('priority: with one slot, a high-priority run started later executes before the waiting low ones', async () => {
    const first = await client.start('labelled', ['p-first', true], { queue: 'solo' });
    await started('p-first');
    const low = [];
    for (const label of ['p-low-1', 'p-low-2', 'p-low-3'])
      low.push(await client.start('labelled', [label], { queue: 'solo', priority: 1 }));
    const high = await client.start('labelled', ['p-high'], { queue: 'solo', priority: 5 });
    // None of them can start while the slot is held.
    expect((await high.status())!.status).toBe('pending');
    jobs.gateOf('p-first').open();
    await first.result({ timeout: '30s' });
    await Promise.all([...low, high].map((h) => h.result({ timeout: '30s' })));
    const order = jobs.order.filter((label) => label.startsWith('p-'));
    expect(order).toEqual(['p-first', 'p-high', 'p-low-1', 'p-low-2', 'p-low-3']);
  });

  it('a delayed queued run is not claimed before its time', async () => {
    const handle = await client.start('labelled', ['delayed'], { queue: 'solo', delay: '1500ms' });
    expect(await handle.result({ timeout: '30s' })).toBe('delayed');
    const [row] = await sql<{ created_at: Date; available_at: Date; admitted_at: Date }>(
      dataSourceOf(app),
      `SELECT created_at, available_at, admitted_at FROM durable.runs WHERE id = $1`,
      [handle.id],
    );
    expect(row.available_at.getTime() - row.created_at.getTime()).toBeGreaterThanOrEqual(1_500);
    expect(row.admitted_at.getTime()).toBeGreaterThanOrEqual(row.available_at.getTime());
  });

  it('a dedup key applies to queued runs: one unfinished run per key', async () => {
    const key = uniqueId('dedup');
    const holder = await client.start('labelled', ['dedup-holder', true], { queue: 'solo' });
    await started('dedup-holder');
    const a = await client.start('labelled', ['dedup-a'], { queue: 'solo', dedupKey: key });
    const b = await client.start('labelled', ['dedup-b'], { queue: 'solo', dedupKey: key });
    expect(b.id).toBe(a.id);
    jobs.gateOf('dedup-holder').open();
    await holder.result({ timeout: '30s' });
    expect(await a.result({ timeout: '30s' })).toBe('dedup-a');
  });

  it('per-key concurrency serializes a key; other keys go on', async () => {
    const a1 = await client.start('labelled', ['k-a1', true], { queue: 'tenants', key: 'a' });
    const a2 = await client.start('labelled', ['k-a2'], { queue: 'tenants', key: 'a' });
    const b1 = await client.start('labelled', ['k-b1'], { queue: 'tenants', key: 'b' });
    await started('k-a1');
    expect(await b1.result({ timeout: '30s' })).toBe('k-b1');
    expect((await a2.status())!.status).toBe('pending');
    jobs.gateOf('k-a1').open();
    await a1.result({ timeout: '30s' });
    expect(await a2.result({ timeout: '30s' })).toBe('k-a2');
  });

  it('a parked run keeps its slot until it finishes', async () => {
    const napper = await client.start('napping', ['nap'], { queue: 'parked' });
    const next = await client.start('labelled', ['after-nap'], { queue: 'parked' });
    await napper.result({ timeout: '30s' });
    await next.result({ timeout: '30s' });
    const order = jobs.order.filter((label) => label.startsWith('nap') || label === 'after-nap');
    expect(order).toEqual(['nap:before', 'nap:after', 'after-nap']);
  });

  it('@Workflow({ queue }) is the default queue of start()', async () => {
    const handle = await client.start('onDefaultQueue', ['defaulted']);
    expect(await handle.result({ timeout: '30s' })).toBe('defaulted');
    const [row] = await sql<{ queue: string }>(
      dataSourceOf(app),
      `SELECT queue FROM durable.runs WHERE id = $1`,
      [handle.id],
    );
    expect(row.queue).toBe('defaulted');
  });

  it('bad input: typed errors, nothing written', async () => {
    const before = await runCount();
    await expect(client.start('labelled', ['x'], { queue: 'nope' })).rejects.toThrow(UnknownQueueError);
    await expect(client.start('labelled', ['x'], { queue: 'nope' })).rejects.toThrow(
      /"nope" is not configured/,
    );
    await expect(client.start('labelled', ['x'], { queue: 'solo', priority: -1 })).rejects.toThrow(
      InvalidArgumentError,
    );
    await expect(client.start('labelled', ['x'], { queue: 'solo', priority: 1.5 })).rejects.toThrow(
      InvalidArgumentError,
    );
    await expect(client.start('labelled', ['x'], { key: 'a' })).rejects.toThrow(InvalidArgumentError);
    await expect(client.start('labelled', ['x'], { priority: 2 })).rejects.toThrow(InvalidArgumentError);
    await expect(client.start('labelled', ['x'], { queue: 'solo', key: '' })).rejects.toThrow(
      InvalidArgumentError,
    );
    expect(await runCount()).toBe(before);
  });
});

describe('backlog of the health check and metrics', () => {
  it('leaves out queued runs waiting for a slot (they wait by configuration)', async () => {
    const stats = app.get(QueueStats);
    const holder = await client.start('labelled', ['backlog-holder', true], { queue: 'solo' });
    await started('backlog-holder');
    for (let i = 0; i < 5; i++) await client.start('labelled', [`backlog-${i}`], { queue: 'solo' });
    // Made due a minute ago: still not counted, the queue's one slot is taken.
    await sql(
      dataSourceOf(app),
      `UPDATE durable.runs SET available_at = now() - interval '1 minute' WHERE input->>0 LIKE 'backlog-_'`,
    );
    const sample = await stats.sample(0);
    expect(sample.oldestAgeSeconds).toBeLessThan(30);
    jobs.gateOf('backlog-holder').open();
    await holder.result({ timeout: '30s' });
  });
});

describe('concurrent claims', () => {
  it('claims racing on separate connections never admit more than the limits', async () => {
    // No worker: the test's own claims are the only ones. Ten claims at once, on ten pool connections.
    const claimer = await createDurableApp({
      url: database.url,
      providers: [QueuedJobs],
      durable: {
        worker: false,
        executorId: 'racing',
        queues: { raced: { concurrency: 3, perKeyConcurrency: 1 }, defaulted: {} },
      },
    });
    try {
      const ds = dataSourceOf(claimer);
      const store = claimer.get(DurableStore);
      const served = claimer.get(WorkflowRegistry).served();
      const racing = claimer.get(DurableClient);
      for (let i = 0; i < 60; i++)
        await racing.start('labelled', [`race-${i}`], { id: `race-${i}`, queue: 'raced', key: `k${i % 4}` });
      const maxima = { overall: 0, perKey: 0 };
      for (let round = 0; round < 40; round++) {
        // A live executor row for 'racing': the other app's sweep must not take its runs over.
        await store.heartbeat('racing');
        await Promise.all(Array.from({ length: 10 }, () => store.claimRuns('racing', served, 5)));
        const [held] = await sql<{ overall: number; per_key: number }>(
          ds,
          `SELECT count(*)::int AS overall, COALESCE(max(n), 0)::int AS per_key FROM (
             SELECT queue_key, count(*) AS n FROM durable.runs
             WHERE queue = 'raced' AND admitted_at IS NOT NULL AND status = 'running' GROUP BY queue_key) k`,
        );
        maxima.overall = Math.max(maxima.overall, held.overall);
        maxima.perKey = Math.max(maxima.perKey, held.per_key);
        // Finish one run held now, so the next round has a slot to race for.
        await sql(
          ds,
          `UPDATE durable.runs SET status = 'succeeded', executor = NULL WHERE id = (
             SELECT id FROM durable.runs WHERE queue = 'raced' AND status = 'running' ORDER BY admitted_at LIMIT 1)`,
        );
      }
      const [done] = await sql<{ n: number }>(
        ds,
        `SELECT count(*)::int AS n FROM durable.runs WHERE queue = 'raced' AND status = 'succeeded'`,
      );
      expect(maxima).toEqual({ overall: 3, perKey: 1 });
      expect(done.n).toBe(40);
    } finally {
      await claimer.close();
    }
  });
});

describe('the queues option is validated at boot', () => {
  const invalid = (queues: unknown, option: string) =>
    expect(() => resolveDurableOptions({ queues } as never)).toThrow(
      expect.objectContaining({
        constructor: InvalidOptionsError,
        message: expect.stringContaining(`"${option}"`),
      }),
    );

  it('names the option that is wrong', () => {
    invalid({ a: { concurrency: -1 } }, 'queues.a.concurrency');
    invalid({ a: { concurrency: 0 } }, 'queues.a.concurrency');
    invalid({ a: { concurrency: 2.5 } }, 'queues.a.concurrency');
    invalid({ a: { perKeyConcurrency: -2 } }, 'queues.a.perKeyConcurrency');
    invalid({ a: { rateLimit: { limit: -1, period: '1s' } } }, 'queues.a.rateLimit.limit');
    invalid({ a: { rateLimit: { limit: 10 } } }, 'queues.a.rateLimit.period');
    invalid({ a: { rateLimit: { limit: 10, period: 'soon' } } }, 'queues.a.rateLimit.period');
    invalid({ a: { rateLimit: { limit: 10, period: 0 } } }, 'queues.a.rateLimit.period');
    invalid({ a: { burst: 3 } }, 'queues.a.burst');
    invalid({ 'bad name!': {} }, 'queues.bad name!');
    invalid([], 'queues');
    expect(
      resolveDurableOptions({ queues: { a: { rateLimit: { limit: 10, period: '1s' } } } }).queues,
    ).toEqual([
      { name: 'a', concurrency: null, perKeyConcurrency: null, rateLimit: 10, ratePeriodMs: 1_000 },
    ]);
  });

  it('a rate limit is paced one run per period/limit, in bursts only above 40 runs/s', () => {
    expect(ratePacing(20, 1_000)).toEqual({ burst: 1, windowMs: 50 });
    expect(ratePacing(40, 1_000)).toEqual({ burst: 1, windowMs: 25 });
    expect(ratePacing(41, 1_000).burst).toBe(2);
    expect(ratePacing(1_000, 1_000)).toEqual({ burst: 25, windowMs: 25 });
    expect(ratePacing(100, 60_000)).toEqual({ burst: 1, windowMs: 600 });
    // Never more than the limit at once, even for a period shorter than the minimum spacing.
    expect(ratePacing(3, 10)).toEqual({ burst: 3, windowMs: 10 });
  });

  it('an app with a bad queue option does not boot', async () => {
    await expect(
      createDurableApp({
        url: database.url,
        providers: [],
        durable: { worker: false, queues: { provider: { concurrency: -5 } } },
      }),
    ).rejects.toThrow(/queues\.provider\.concurrency/);
  });
});
