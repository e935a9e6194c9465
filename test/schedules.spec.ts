/**
 * Cron schedules in one process: @Schedule declarations stored at startup, client.schedules, the
 * overlap policies and bad input. Multi-replica behaviour is in schedules-replicas.spec.ts.
 */
import { INestApplicationContext, Injectable } from '@nestjs/common';
import {
  DurableClient,
  InvalidArgumentError,
  Schedule,
  ScheduleConflictError,
  ScheduleNotFoundError,
  scheduledRunId,
  Workflow,
} from 'nest-durable';
import { createTestDatabase, TestDatabase } from './support/database';
import { createDurableApp } from './support/durable-app';
import { dataSourceOf, gate, Gate, sleep, sql, waitUntil } from './support/helpers';

jest.setTimeout(90_000);

@Injectable()
class Scheduled {
  readonly ticks: { name: string; tick: Date; args: unknown[] }[] = [];
  readonly gates: Gate[] = [];
  blocking = false;
  active = 0;
  maxActive = 0;

  @Schedule('* * * * * *', { name: 'fast', overlap: 'allow', catchUp: 'all' })
  @Workflow()
  async everySecond(tick: Date) {
    this.ticks.push({ name: 'fast', tick, args: [] });
  }

  @Schedule('0 2 * * *', { timezone: 'Europe/Paris' })
  @Workflow()
  async nightly(tick: Date) {
    this.ticks.push({ name: 'nightly', tick, args: [] });
  }

  /** Blocks while `blocking` is set (until its gate opens), counting how many run at once. */
  @Workflow()
  async slow(tick: Date, label: string) {
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    this.ticks.push({ name: label, tick, args: [label] });
    if (this.blocking) {
      const g = gate();
      this.gates.push(g);
      await g.promise;
    }
    this.active--;
  }
}

let database: TestDatabase;
let app: INestApplicationContext;
let client: DurableClient;
let flows: Scheduled;

beforeAll(async () => {
  database = await createTestDatabase();
  app = await createDurableApp({
    url: database.url,
    providers: [Scheduled],
    durable: { pollIntervalMs: 100, executorId: 'schedules-spec' },
  });
  client = app.get(DurableClient);
  flows = app.get(Scheduled);
});

afterAll(async () => {
  await app?.close();
  await database?.drop();
});

const runIds = async (schedule: string) =>
  (
    await sql<{ id: string; status: string }>(
      dataSourceOf(app),
      `SELECT id, status FROM durable.runs WHERE id LIKE $1 ORDER BY id`,
      [`schedule:${schedule}:%`],
    )
  ).map((row) => row.id);

describe('@Schedule', () => {
  it('stores the declared schedules at startup', async () => {
    expect(await client.schedules.get('nightly')).toMatchObject({
      name: 'nightly',
      workflow: 'nightly',
      cron: '0 2 * * *',
      timezone: 'Europe/Paris',
      overlap: 'skip',
      catchUp: 'latest',
      missedAfterMs: 60_000,
      source: 'decorator',
      paused: false,
    });
    const next = (await client.schedules.get('nightly'))!.nextTickAt!;
    expect([0, 1]).toContain(next.getUTCHours()); // 02:00 in Paris
    expect((await client.schedules.list()).map((s) => s.name)).toEqual(['fast', 'nightly']);
  });

  it('starts one run per tick, called with the tick time, with an id derived from the tick', async () => {
    await waitUntil('two ticks of "fast"', async () => (flows.ticks.length >= 2 ? true : undefined), 20_000);
    await client.schedules.pause('fast');
    await sleep(300); // a sweep in flight may still fire the tick it locked
    const ids = await runIds('fast');
    const fired = flows.ticks.filter((t) => t.name === 'fast');
    expect(fired.every((t) => t.tick instanceof Date && t.tick.getUTCMilliseconds() === 0)).toBe(true);
    expect(fired.map((t) => scheduledRunId('fast', t.tick)).sort()).toEqual(ids);
    // Paused: no more ticks.
    await sleep(1_500);
    expect(await runIds('fast')).toEqual(ids);
    expect((await client.schedules.get('fast'))!.paused).toBe(true);
  });
});

describe('client.schedules', () => {
  beforeEach(() => {
    flows.ticks.length = 0;
    flows.maxActive = 0;
  });

  it('creates, triggers and deletes a schedule; its args follow the tick time', async () => {
    const info = await client.schedules.create('yearly', {
      workflow: 'slow',
      cron: '0 0 1 1 *',
      args: ['yearly'],
    });
    expect(info).toMatchObject({ name: 'yearly', source: 'client', args: ['yearly'], overlap: 'skip' });
    const id = await client.schedules.trigger('yearly');
    expect(id).toMatch(/^schedule:yearly:trigger:/);
    await client.handle(id).result({ timeout: '10s' });
    expect(flows.ticks).toEqual([{ name: 'yearly', tick: expect.any(Date), args: ['yearly'] }]);
    await client.schedules.delete('yearly');
    expect(await client.schedules.get('yearly')).toBeNull();
  });

  it("overlap 'skip': ticks while the previous run is unfinished start nothing", async () => {
    flows.blocking = true;
    await client.schedules.create('skipping', {
      workflow: 'slow',
      cron: '* * * * * *',
      args: ['skipping'],
      overlap: 'skip',
    });
    await waitUntil(
      'the first run to block',
      async () => (flows.gates.length === 1 ? true : undefined),
      20_000,
    );
    await sleep(2_500); // two or three ticks pass while it blocks
    expect(await runIds('skipping')).toHaveLength(1);
    flows.blocking = false;
    flows.gates.forEach((g) => g.open());
    flows.gates.length = 0;
    await waitUntil(
      'a run after the first',
      async () => ((await runIds('skipping')).length >= 2 ? true : undefined),
      20_000,
    );
    await client.schedules.delete('skipping');
    expect(flows.maxActive).toBe(1);
  });

  it("overlap 'queue': ticks wait for the previous run, then run one at a time in tick order", async () => {
    flows.blocking = true;
    await client.schedules.create('queued', {
      workflow: 'slow',
      cron: '* * * * * *',
      args: ['queued'],
      overlap: 'queue',
    });
    await waitUntil(
      'the first run to block',
      async () => (flows.gates.length === 1 ? true : undefined),
      20_000,
    );
    await waitUntil(
      'two deferred ticks',
      async () => ((await client.schedules.get('queued'))!.deferredTicks.length >= 2 ? true : undefined),
      20_000,
    );
    expect(await runIds('queued')).toHaveLength(1);
    flows.blocking = false;
    flows.gates.forEach((g) => g.open());
    await waitUntil(
      'the deferred ticks to run',
      async () => (flows.ticks.length >= 4 ? true : undefined),
      20_000,
    );
    await client.schedules.delete('queued');
    const ticks = flows.ticks.map((t) => t.tick.getTime());
    expect(ticks).toEqual([...ticks].sort((a, b) => a - b));
    expect(ticks.slice(1).map((t, i) => t - ticks[i])).toEqual(ticks.slice(1).map(() => 1_000));
    expect(flows.maxActive).toBe(1);
  });

  it('refuses bad input with typed errors', async () => {
    await expect(client.schedules.create('nightly', { workflow: 'slow', cron: '* * * * *' })).rejects.toThrow(
      ScheduleConflictError,
    );
    await expect(client.schedules.create('bad', { workflow: 'slow', cron: '61 * * * *' })).rejects.toThrow(
      InvalidArgumentError,
    );
    await expect(
      client.schedules.create('bad', { workflow: 'slow', cron: '* * * * *', args: 'x' as never }),
    ).rejects.toThrow(InvalidArgumentError);
    await expect(client.schedules.pause('missing')).rejects.toThrow(ScheduleNotFoundError);
    await expect(client.schedules.trigger('missing')).rejects.toThrow(ScheduleNotFoundError);
    await expect(client.schedules.delete('missing')).rejects.toThrow(ScheduleNotFoundError);
    expect(() => Schedule('every day')).toThrow(InvalidArgumentError);
  });
});

describe('@Schedule declarations at startup', () => {
  @Injectable()
  class Redeployed {
    /** The same workflow, its schedule changed: read in another zone, and 'fast' no longer declared. */
    @Schedule('0 3 * * *', { timezone: 'America/New_York', name: 'nightly' })
    @Workflow()
    async nightly() {}

    @Workflow()
    async everySecond() {}
  }

  @Injectable()
  class Misdecorated {
    @Schedule('0 3 * * *')
    async notAWorkflow() {}
  }

  it('a redeploy updates changed schedules and deletes the ones its workflows no longer declare', async () => {
    const other = await createDurableApp({
      url: database.url,
      providers: [Redeployed],
      durable: { executorId: 'schedules-spec-redeployed' },
    });
    try {
      expect(await other.get(DurableClient).schedules.get('nightly')).toMatchObject({
        cron: '0 3 * * *',
        timezone: 'America/New_York',
        overlap: 'skip',
      });
      expect(await client.schedules.get('fast')).toBeNull();
    } finally {
      await other.close();
    }
  });

  it('@Schedule without @Workflow fails at startup', async () => {
    await expect(
      createDurableApp({ url: database.url, providers: [Misdecorated], durable: { worker: false } }),
    ).rejects.toThrow(/has @Schedule but no @Workflow/);
  });
});
