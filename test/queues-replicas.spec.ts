/**
 * Queue limits across replicas: real worker processes (test/fixtures/flow-worker.ts) claim queued runs
 * started by a client-only app in this process. Each execution of the queued step records 'enter' and
 * 'exit' rows stamped by the database clock (public.queue_events); the assertions are about those rows
 * and the runs the database holds, never about how long anything took.
 */
import { INestApplicationContext } from '@nestjs/common';
import { join } from 'node:path';
import { Client } from 'pg';
import { DurableClient, DurableModuleOptions } from 'nest-durable';
import { createTestDatabase, TestDatabase } from './support/database';
import { createDurableApp } from './support/durable-app';
import { waitUntil } from './support/helpers';
import { QUEUE_EVENTS_TABLE_DDL } from './support/tables';
import { WorkerSet } from './support/workers';

jest.setTimeout(600_000);

const FAST = { LEASE_MS: 1_500, HEARTBEAT_MS: 300, POLL_MS: 200 };
const REPLICAS = ['replica-a', 'replica-b', 'replica-c'];
const QUEUES: DurableModuleOptions['queues'] = {
  provider: { concurrency: 5, perKeyConcurrency: 1 },
  limited: { rateLimit: { limit: 20, period: '1s' } },
  single: { concurrency: 1 },
};

let database: TestDatabase | undefined;
let db: Client;
let clientApp: INestApplicationContext | undefined;
let client: DurableClient;
const workers = new WorkerSet({
  fixture: join(__dirname, 'fixtures', 'flow-worker.ts'),
  url: () => database!.url,
  baseEnv: { CONCURRENCY: '', LEASE_MS: '', HEARTBEAT_MS: '', POLL_MS: '', BLOCK_MS: '' },
  bootMs: 120_000,
});

beforeEach(async () => {
  database = await createTestDatabase();
  db = new Client({ connectionString: database.url });
  await db.connect();
  await db.query(QUEUE_EVENTS_TABLE_DDL);
  clientApp = await createDurableApp({
    url: database.url,
    providers: [],
    durable: { worker: false, queues: QUEUES },
  });
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

const startReplicas = (env: Record<string, string | number> = {}) =>
  Promise.all(
    REPLICAS.map((name) => workers.start(name, { ...FAST, QUEUES: JSON.stringify(QUEUES), ...env })),
  );

async function query<T>(text: string, values: unknown[] = []): Promise<T[]> {
  return (await db.query(text, values)).rows as T[];
}

/** Waits until every run of the queue has succeeded. */
const allSucceeded = (queue: string, count: number, timeoutMs = 300_000) =>
  waitUntil(
    `${count} runs of queue ${queue} to succeed`,
    async () => {
      const [row] = await query<{ n: number }>(
        `SELECT count(*)::int AS n FROM durable.runs WHERE queue = $1 AND status = 'succeeded'`,
        [queue],
      );
      return row.n === count ? true : undefined;
    },
    timeoutMs,
    async () => workers.outputs(15),
  );

/**
 * The most step executions in progress at once (overall, and for one key): a running sum over the
 * enter (+1) and exit (-1) rows in database-clock order, exits first on a tie.
 */
async function maxInProgress(): Promise<{ overall: number; perKey: number }> {
  const [row] = await query<{ overall: number; per_key: number }>(
    `SELECT
       (SELECT max(n) FROM (SELECT sum(CASE kind WHEN 'enter' THEN 1 ELSE -1 END)
          OVER (ORDER BY at, kind = 'enter', id) AS n FROM public.queue_events) a)::int AS overall,
       (SELECT max(n) FROM (SELECT sum(CASE kind WHEN 'enter' THEN 1 ELSE -1 END)
          OVER (PARTITION BY key ORDER BY at, kind = 'enter', id) AS n FROM public.queue_events) k)::int AS per_key`,
  );
  return { overall: row.overall, perKey: row.per_key };
}

/** The most timestamps within any window [t, t + periodMs) starting at one of them. */
function maxInWindow(sortedMs: number[], periodMs: number): number {
  let max = 0;
  let end = 0;
  for (let start = 0; start < sortedMs.length; start++) {
    while (end < sortedMs.length && sortedMs[end] < sortedMs[start] + periodMs) end++;
    max = Math.max(max, end - start);
  }
  return max;
}

describe('queues across replicas (real processes, real PostgreSQL)', () => {
  it('3 replicas, concurrency 5 and 1 per key over 20 keys, 500 runs: never more than 5 at once, nor 2 of a key', async () => {
    // A long lease: a replica starved of CPU must not lose a run to a takeover here (its step would then
    // execute twice at once, which is the lease's business, tested below, not the queue's).
    await startReplicas({ LEASE_MS: 20_000, HEARTBEAT_MS: 2_000 });
    const RUNS = 500;
    for (let i = 0; i < RUNS; i++) {
      const key = `tenant-${i % 20}`;
      await client.start('queuedWork', [key, 20], { id: `conc-${i}`, queue: 'provider', key });
    }
    await allSucceeded('provider', RUNS);

    const { overall, perKey } = await maxInProgress();
    process.stderr.write(`[queues] at most ${overall} in progress at once, ${perKey} per key\n`);
    if (overall > 5 || perKey > 1) {
      const spans = await query(
        `WITH ev AS (SELECT *, sum(CASE kind WHEN 'enter' THEN 1 ELSE -1 END) OVER (ORDER BY at, kind = 'enter', id) AS n FROM public.queue_events),
           peak AS (SELECT at FROM ev WHERE n > 5 ORDER BY at LIMIT 1)
         SELECT e.run_id, e.key, e.executor, e.kind, e.at, r.attempts, r.admitted_at, r.claimed_at
         FROM public.queue_events e JOIN durable.runs r ON r.id = e.run_id, peak
         WHERE e.at BETWEEN peak.at - interval '300 ms' AND peak.at + interval '50 ms' ORDER BY e.at`,
      );
      process.stderr.write(JSON.stringify(spans, null, 1) + '\n' + workers.outputs(30) + '\n');
    }
    expect(overall).toBeLessThanOrEqual(5);
    expect(perKey).toBe(1);
    // Every run executed its step exactly once, and by more than one replica overall.
    const executions = await query<{ runs: number; enters: number; exits: number; executors: number }>(
      `SELECT count(DISTINCT run_id)::int AS runs, count(*) FILTER (WHERE kind = 'enter')::int AS enters,
         count(*) FILTER (WHERE kind = 'exit')::int AS exits, count(DISTINCT executor)::int AS executors
       FROM public.queue_events`,
    );
    expect(executions[0]).toMatchObject({ runs: RUNS, enters: RUNS, exits: RUNS });
    expect(executions[0].executors).toBeGreaterThan(1);
  });

  it('a rate limit of 20/s holds across 3 replicas, admissions spread evenly: at most 21 first steps in any 1 s', async () => {
    await startReplicas();
    // Warm the replicas first (connections, prepared statements, first executions are slow): the
    // measure is of the limit, not of a cold start's delay between a claim and its first step.
    const warm = [];
    for (let i = 0; i < 30; i++)
      warm.push(await client.start('queuedWork', [`warm-${i}`, 0], { id: `warm-${i}` }));
    await Promise.all(warm.map((handle) => handle.result({ timeout: '120s' })));
    // All due at one instant, after they are all inserted: nothing else happens while they are claimed.
    const RUNS = 100;
    const [{ at: startAt }] = await query<{ at: Date }>(
      `SELECT clock_timestamp() + interval '3 seconds' AS at`,
    );
    for (let i = 0; i < RUNS; i++)
      await client.start('queuedWork', [`r-${i}`, 0], { id: `rate-${i}`, queue: 'limited', startAt });
    await allSucceeded('limited', RUNS);

    const ms = (rows: { at: Date }[]) => rows.map((row) => row.at.getTime()).sort((a, b) => a - b);
    // The first step's start of each run, stamped by the database clock in the step's own statement.
    const firstSteps = ms(
      await query<{ at: Date }>(
        `SELECT min(at) AS at FROM public.queue_events WHERE kind = 'enter' AND run_id LIKE 'rate-%' GROUP BY run_id`,
      ),
    );
    const admissions = ms(
      await query<{ at: Date }>(`SELECT admitted_at AS at FROM durable.runs WHERE queue = 'limited'`),
    );
    // The shortest time between two admissions (database clock, microseconds).
    const [{ gap_ms: minGapMs, span_ms: spanMs }] = await query<{ gap_ms: number; span_ms: number }>(
      `SELECT min(gap) AS gap_ms, extract(epoch FROM max(admitted_at) - min(admitted_at)) * 1000 AS span_ms
       FROM (SELECT admitted_at, extract(epoch FROM admitted_at - lag(admitted_at) OVER (ORDER BY admitted_at)) * 1000 AS gap
             FROM durable.runs WHERE queue = 'limited') g`,
    );
    // Claim-to-first-step delays (the replica's event loop, its pool, CPU time on a busy machine).
    const lags = (
      await query<{ lag_ms: number }>(
        `SELECT extract(epoch FROM (min(e.at) - r.admitted_at)) * 1000 AS lag_ms
         FROM durable.runs r JOIN public.queue_events e ON e.run_id = r.id AND e.kind = 'enter'
         WHERE r.queue = 'limited' GROUP BY r.id ORDER BY 1`,
      )
    ).map((row) => Math.round(Number(row.lag_ms)));
    const stepMax = maxInWindow(firstSteps, 1_000);
    const admittedMax = maxInWindow(admissions, 1_000);
    process.stderr.write(
      `[queues] rate 20/s: at most ${admittedMax} claims and ${stepMax} first steps in any 1 s window; ` +
        `admissions at least ${Number(minGapMs).toFixed(1)} ms apart, ${RUNS} in ${Math.round(Number(spanMs))} ms; ` +
        `claim-to-first-step delay min ${lags[0]} ms, median ${lags[lags.length >> 1]} ms, max ${lags[lags.length - 1]} ms\n`,
    );
    expect(firstSteps).toHaveLength(RUNS);
    // The claims that started runs: at most the limit in any window of the period, one every 50 ms
    // (period / limit) at most (database clock).
    expect(admittedMax).toBeLessThanOrEqual(20);
    expect(Number(minGapMs)).toBeGreaterThanOrEqual(50);
    // The first steps, as the rate-limited service sees them: at most one more than the limit in any
    // 1 s window. The claim guarantees only the spacing above; a window of first steps holds more when
    // the replicas' claim-to-step delays (printed above) differ by more than the slack the pacing leaves
    // (claims come on each replica's tick, so admissions run a little below the limit).
    expect(stepMax).toBeLessThanOrEqual(21);
    expect(lags[0]).toBeGreaterThanOrEqual(0);
  });

  it('kill -9 of the replica holding the only slot: the slot comes back, the run is taken over, the queue goes on', async () => {
    // A blocked step waits 4 s (BLOCK_MS) and then goes on, so the run taken over can finish.
    // A lease long enough that a replica slowed down by a busy machine keeps its runs: only the kill
    // may cause a takeover here.
    await startReplicas({ BLOCK_MS: 4_000, LEASE_MS: 5_000, HEARTBEAT_MS: 1_000 });
    await client.start('queuedWork', ['held', -1], { id: 'held', queue: 'single' });
    const [holder] = await waitUntil(
      'the held run to enter its step',
      async () => {
        const rows = await query<{ executor: string }>(
          `SELECT executor FROM public.queue_events WHERE run_id = 'held' AND kind = 'enter'`,
        );
        return rows.length > 0 ? rows : undefined;
      },
      120_000,
      async () => workers.outputs(15),
    );
    for (let i = 0; i < 5; i++)
      await client.start('queuedWork', [`after-${i}`, 10], { id: `after-${i}`, queue: 'single' });
    const victim = workers.all().find((w) => w.name === holder.executor)!;
    await victim.kill('SIGKILL');
    const [{ killed_at: killedAt }] = await query<{ killed_at: Date }>(
      `SELECT clock_timestamp() AS killed_at`,
    );

    await allSucceeded('single', 6);
    const runs = await query<{ id: string; attempts: number; admitted_at: Date; executor_events: string[] }>(
      `SELECT r.id, r.attempts, r.admitted_at,
         (SELECT array_agg(e.executor ORDER BY e.id) FROM public.queue_events e WHERE e.run_id = r.id AND e.kind = 'enter') AS executor_events
       FROM durable.runs r WHERE r.queue = 'single' ORDER BY r.admitted_at`,
    );
    // The held run was claimed twice: by the killed replica, then by a survivor.
    const held = runs.find((run) => run.id === 'held')!;
    expect(held.attempts).toBe(2);
    expect(held.executor_events).toHaveLength(2);
    expect(held.executor_events[1]).not.toBe(holder.executor);
    // The others were admitted only after the kill (the slot was held until then), one at a time.
    for (const run of runs.filter((r) => r.id !== 'held')) {
      expect(run.admitted_at.getTime()).toBeGreaterThan(killedAt.getTime());
      expect(run.executor_events).toHaveLength(1);
    }
    // Completed executions never overlapped (the killed one never exited).
    const { overall } = await maxInProgress();
    expect(overall).toBeLessThanOrEqual(2);
    const [{ overlaps }] = await query<{ overlaps: number }>(
      `WITH spans AS (
         SELECT run_id, min(at) FILTER (WHERE kind = 'enter') AS enter_at, max(at) FILTER (WHERE kind = 'exit') AS exit_at
         FROM public.queue_events WHERE run_id <> 'held' OR at > $1 GROUP BY run_id)
       SELECT count(*)::int AS overlaps FROM spans a JOIN spans b ON a.run_id < b.run_id
       WHERE a.enter_at < b.exit_at AND b.enter_at < a.exit_at`,
      [killedAt],
    );
    expect(overlaps).toBe(0);
  });
});
