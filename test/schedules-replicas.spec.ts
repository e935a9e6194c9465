/**
 * Cron schedules across replicas: real worker processes (test/fixtures/flow-worker.ts) serve the
 * scheduled workflow, a client-only app in this process creates the schedules, and the assertions are
 * about the runs and the ticks the database holds.
 */
import { INestApplicationContext } from '@nestjs/common';
import { join } from 'node:path';
import { Client } from 'pg';
import { DurableClient } from 'nest-durable';
import { createTestDatabase, TestDatabase } from './support/database';
import { createDurableApp } from './support/durable-app';
import { sleep, waitUntil } from './support/helpers';
import { TICKS_TABLE_DDL } from './support/tables';
import { WorkerSet } from './support/workers';

jest.setTimeout(300_000);

const FAST = { LEASE_MS: 1_500, HEARTBEAT_MS: 300, POLL_MS: 200 };
const REPLICAS = ['replica-a', 'replica-b', 'replica-c'];

let database: TestDatabase | undefined;
let db: Client;
let clientApp: INestApplicationContext | undefined;
let client: DurableClient;
const workers = new WorkerSet({
  fixture: join(__dirname, 'fixtures', 'flow-worker.ts'),
  url: () => database!.url,
  baseEnv: { CONCURRENCY: '', LEASE_MS: '', HEARTBEAT_MS: '', POLL_MS: '' },
  // Three processes boot at once on a busy machine.
  bootMs: 120_000,
});

beforeEach(async () => {
  database = await createTestDatabase();
  db = new Client({ connectionString: database.url });
  await db.connect();
  await db.query(TICKS_TABLE_DDL);
  clientApp = await createDurableApp({ url: database.url, providers: [], durable: { worker: false } });
  client = clientApp.get(DurableClient);
});

afterEach(async () => {
  await workers.killAll();
  await clientApp?.close();
  clientApp = undefined;
  await db?.end().catch(() => undefined);
  await database?.drop();
  database = undefined;
});

interface ScheduledRun {
  id: string;
  status: string;
  tick: Date;
  created_at: Date;
}

/** The runs a schedule started, by tick (the run's first argument). */
async function runsOf(schedule: string): Promise<ScheduledRun[]> {
  const { rows } = await db.query<ScheduledRun>(
    `SELECT id, status, (input->0->>'v')::timestamptz AS tick, created_at FROM durable.runs
     WHERE id LIKE $1 ORDER BY tick`,
    [`schedule:${schedule}:%`],
  );
  return rows;
}

async function dbNow(): Promise<Date> {
  return (await db.query<{ now: Date }>('SELECT clock_timestamp() AS now')).rows[0].now;
}

const diagnose = async () => `${workers.outputs(15)}`;

/** Waits until the schedule has started a run for a tick at or after `tick`. */
const firedUpTo = (schedule: string, tick: Date, timeoutMs = 60_000) =>
  waitUntil(
    `schedule ${schedule} to fire the tick of ${tick.toISOString()}`,
    async () => ((await runsOf(schedule)).some((run) => run.tick >= tick) ? true : undefined),
    timeoutMs,
    diagnose,
  );

/** Pauses the schedules and waits until every run they started has finished. */
async function settle(...schedules: string[]): Promise<void> {
  for (const name of schedules) await client.schedules.pause(name);
  await waitUntil(
    'every scheduled run to finish',
    async () => {
      const all: ScheduledRun[] = [];
      for (const name of schedules) all.push(...(await runsOf(name)));
      return all.every((run) => run.status === 'succeeded') ? true : undefined;
    },
    60_000,
    diagnose,
  );
}

/** Every second from `first` to `last`, inclusive. */
function everySecond(first: Date, last: Date): string[] {
  const ticks: string[] = [];
  for (let t = first.getTime(); t <= last.getTime(); t += 1_000) ticks.push(new Date(t).toISOString());
  return ticks;
}

const iso = (runs: ScheduledRun[]) => runs.map((run) => run.tick.toISOString());

describe('cron schedules across replicas (real processes, real PostgreSQL)', () => {
  it('3 replicas, an every-second schedule for 10 s: exactly one run per tick, none duplicated', async () => {
    await Promise.all(REPLICAS.map((name) => workers.start(name, FAST)));
    const created = await client.schedules.create('every', {
      workflow: 'recordTick',
      cron: '* * * * * *',
      overlap: 'allow',
      catchUp: 'all',
    });
    await firedUpTo('every', new Date(created.createdAt.getTime() + 10_000));
    await settle('every');

    const runs = await runsOf('every');
    // One run per tick, from the first tick after the schedule was created, with no gap.
    const first = new Date(Math.floor(created.createdAt.getTime() / 1_000) * 1_000 + 1_000);
    expect(iso(runs)).toEqual(everySecond(first, runs[runs.length - 1].tick));
    expect(runs.length).toBeGreaterThanOrEqual(10);
    expect(runs.every((run) => run.id === `schedule:every:${run.tick.toISOString()}`)).toBe(true);
    // Each run executed its step once: no tick was fired twice by two replicas.
    const { rows } = await db.query<{ runs: number; executions: number; ticks: number }>(
      `SELECT count(DISTINCT run_id)::int AS runs, count(*)::int AS executions, count(DISTINCT tick)::int AS ticks
       FROM public.ticks`,
    );
    expect(rows[0]).toEqual({ runs: runs.length, executions: runs.length, ticks: runs.length });
  });

  it('all replicas down for 5 s, then up: missed ticks follow each catch-up policy', async () => {
    await Promise.all(REPLICAS.map((name) => workers.start(name, FAST)));
    const policies = ['all', 'latest', 'none'] as const;
    for (const catchUp of policies) {
      await client.schedules.create(catchUp, {
        workflow: 'recordTick',
        cron: '* * * * * *',
        overlap: 'allow',
        catchUp,
        missedAfter: '2s',
      });
    }
    const start = await dbNow();
    for (const name of policies) await firedUpTo(name, new Date(start.getTime() + 2_000));

    await workers.killAll();
    const killedAt = await dbNow();
    await sleep(5_000);
    const restartedAt = await dbNow();
    await Promise.all(REPLICAS.map((name) => workers.start(name, FAST)));
    for (const name of policies) await firedUpTo(name, new Date(restartedAt.getTime() + 2_000));
    await settle(...policies);

    const before = (runs: ScheduledRun[]) => runs.filter((run) => run.created_at < killedAt);
    // A run's created_at is the time of the sweep that started it (the transaction's now()). The first
    // sweep after the restart found the downtime's ticks: those older than missedAfter (2 s) were missed.
    const firstSweep = (runs: ScheduledRun[]) => {
      const at = Math.min(
        ...runs.filter((run) => run.created_at >= restartedAt).map((run) => run.created_at.getTime()),
      );
      const fired = runs.filter((run) => run.created_at.getTime() === at);
      return { at, fired, missed: fired.filter((run) => run.tick.getTime() < at - 2_000) };
    };
    const lastBefore = (runs: ScheduledRun[]) => before(runs)[before(runs).length - 1].tick.getTime();

    // 'all': every tick has its run, the downtime's too.
    const all = await runsOf('all');
    expect(iso(all)).toEqual(everySecond(all[0].tick, all[all.length - 1].tick));
    expect(firstSweep(all).missed.length).toBeGreaterThanOrEqual(3);

    // 'latest': one run for the missed ticks, the most recent of them.
    const latest = await runsOf('latest');
    const caughtUp = firstSweep(latest);
    expect(caughtUp.missed).toHaveLength(1);
    expect(caughtUp.missed[0].tick.getTime()).toBeGreaterThanOrEqual(caughtUp.at - 3_000);
    expect(caughtUp.missed[0].tick.getTime() - lastBefore(latest)).toBeGreaterThanOrEqual(2_000);

    // 'none': no run for the missed ticks.
    const none = await runsOf('none');
    expect(firstSweep(none).missed).toEqual([]);
    const firstAfter = Math.min(...firstSweep(none).fired.map((run) => run.tick.getTime()));
    expect(firstAfter - lastBefore(none)).toBeGreaterThanOrEqual(3_000);
  });
});
