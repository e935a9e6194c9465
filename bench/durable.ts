/**
 * Bench child for the library ("durable"). Run by scripts/bench.mjs with DATABASE_URL (a fresh database)
 * and BENCH_CONFIG (see bench/support.ts); prints one JSON line per result.
 */
import { INestApplicationContext } from '@nestjs/common';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { DataSource } from 'typeorm';
import { DurableClient, DurableModuleOptions } from 'nest-durable';
import { DurableStore } from 'nest-durable/persistence/durable.store';
import { BenchFlows, BUSINESS_TABLE_DDL, createBenchApp } from './app';
import {
  StatementCounter,
  counterDelta,
  cpuMs,
  emit,
  gc,
  loadAverage,
  measure,
  readConfig,
  round,
  runConcurrently,
  percentile,
  pressure,
  pressureBetween,
  serverCounters,
  sinceCheckpointS,
  sleep,
  startProfile,
  stopProfile,
  suiteOf,
  warmRound,
} from './support';

// Patches pg.Client.prototype.query (shared by TypeORM's pool and every client), before the app boots.
const counter = new StatementCounter().install();

const { url, config } = readConfig();

/**
 * `durable-async` is this child with the asyncCheckpoints option on; `durable-telemetry-off` with tracing
 * and metrics off (bench/app.ts reads BENCH_TELEMETRY).
 */
const SYSTEM =
  process.env.BENCH_ASYNC_CHECKPOINTS === '1'
    ? 'durable-async'
    : process.env.BENCH_TELEMETRY === 'off'
      ? 'durable-telemetry-off'
      : 'durable';

/** The DataSource's pg pool (the library's statements go straight to it). */
function poolOf(app: INestApplicationContext): pg.Pool {
  return (app.get(DataSource).driver as unknown as { master: pg.Pool }).master;
}

/** Statement counting must see only the runs: no heartbeat or sweep inside the window. */
const QUIET: DurableModuleOptions = { leaseMs: 3_600_000, heartbeatMs: 600_000, pollIntervalMs: 600_000 };

async function boot(durable: DurableModuleOptions = {}): Promise<INestApplicationContext> {
  return createBenchApp({
    url,
    poolSize: config.poolSize,
    durable: {
      concurrency: config.durableConcurrency ?? Math.max(32, config.concurrency),
      ...(config.pollIntervalMs ? { pollIntervalMs: config.pollIntervalMs } : {}),
      ...(SYSTEM === 'durable-async' ? { asyncCheckpoints: true } : {}),
      ...durable,
    },
  });
}

function workflowOf(workload: string, steps: number): string {
  if (workload === 'transactional') return 'benchTx3';
  return steps === 10 ? 'bench10' : 'bench3';
}

/** A separate connection for watching the runs (not the app's pool, not counted as the app's). */
async function watcher(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, application_name: 'bench-watcher' });
  await client.connect();
  return client;
}

/**
 * Counts the runs that end from now on, from the library's own notifications ('done:<id>' on the
 * schema's channel, sent by every finish): no polling, which on a 2-core machine would take CPU from
 * the runs measured (a count over a table growing with dead row versions, every few milliseconds).
 */
async function finishes(client: pg.Client): Promise<{
  /** Resolves with the time (Date.now()) the `target`-th run ended. */
  until(target: number, timeoutMs: number): Promise<number>;
  /** Seconds from `since` at which each tenth of `total` had ended. */
  progress(since: number, total: number): number[];
}> {
  const times: number[] = [];
  let waiter: (() => void) | undefined;
  client.on('notification', (message) => {
    if (!message.payload?.startsWith('done:')) return;
    times.push(Date.now());
    waiter?.();
  });
  await client.query('LISTEN durable_events');
  return {
    async until(target, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (times.length < target) {
        if (Date.now() > deadline)
          throw new Error(`timed out waiting for ${target} runs to end (${times.length} did)`);
        await new Promise<void>((resolve) => {
          waiter = resolve;
          setTimeout(resolve, 1000);
        });
      }
      return times[target - 1];
    },
    progress(since, total) {
      return Array.from({ length: 10 }, (_, i) => times[Math.ceil(((i + 1) * total) / 10) - 1])
        .filter((t) => t !== undefined)
        .map((t) => round((t - since) / 1000, 2));
    },
  };
}

async function countRuns(client: pg.Client, where: string): Promise<number> {
  const { rows } = await client.query(`SELECT count(*)::int AS n FROM durable.runs WHERE ${where}`);
  return rows[0].n as number;
}

async function waitFor(
  client: pg.Client,
  where: string,
  target: number,
  timeoutMs: number,
  everyMs = 50,
): Promise<number> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const n = await countRuns(client, where);
    if (n >= target) return Date.now();
    if (Date.now() > until) throw new Error(`timed out waiting for ${target} runs with ${where} (have ${n})`);
    await sleep(everyMs);
  }
}

/**
 * Each configuration, after a warm-up: sequential direct calls of the @Workflow method (latency: what a
 * caller that just awaits it sees), or client.start + handle.result(), `concurrency` at a time.
 */
async function suite(): Promise<void> {
  const app = await boot();
  await app.get(DataSource).query(BUSINESS_TABLE_DDL);
  const flows = app.get(BenchFlows);
  const client = app.get(DurableClient);
  const cases = suiteOf(config).map((c) => {
    const name = workflowOf(c.workload, c.steps);
    const run =
      c.workload === 'latency'
        ? c.steps === 10
          ? (i: number) => flows.ten(i)
          : (i: number) => flows.three(i)
        : async (i: number) => (await client.start(name, [i])).result();
    return { c, run, concurrency: c.workload === 'latency' ? 1 : c.concurrency };
  });
  // All warm-ups first: the launcher starts measuring once every system has booted and warmed up.
  for (const { c, run, concurrency } of cases) await runConcurrently(c.warmup, concurrency, run);
  gc();
  for (const { c, run, concurrency } of cases) {
    emit(
      await measure(SYSTEM, c, concurrency, run, counter, () =>
        warmRound(concurrency, run, poolOf(app), c.poolSize),
      ),
    );
  }
  await app.close();
}

/** Statements of direct-call runs, counted at the pg client, against the budget. */
async function statements(): Promise<void> {
  const app = await boot(QUIET);
  await app.get(DataSource).query(BUSINESS_TABLE_DDL);
  const flows = app.get(BenchFlows);
  const cases: {
    label: string;
    steps: number;
    transactional: boolean;
    call: (i: number) => Promise<number>;
  }[] = [
    { label: 'K=3', steps: 3, transactional: false, call: (i) => flows.three(i) },
    { label: 'K=10', steps: 10, transactional: false, call: (i) => flows.ten(i) },
    { label: 'K=3 transactional', steps: 3, transactional: true, call: (i) => flows.tx3(i) },
  ];
  for (const c of cases) {
    await runConcurrently(5, 1, c.call);
    counter.start();
    await runConcurrently(config.runs, 1, c.call);
    const counted = counter.stop();
    const per = (label: string) => (counted.byLabel[label] ?? 0) / config.runs;
    const perRun = counted.total / config.runs;
    // The checkpoint INSERT is the step's statement; BEGIN/COMMIT and the business INSERT of a
    // transactional step belong to the step's own transaction (the user's work), not to the library.
    const checkpoints = per('INSERT durable.steps');
    const txOverhead = c.transactional
      ? per('BEGIN') + per('COMMIT') + per('INSERT public.bench_business')
      : 0;
    // The NOTIFY of finished runs: its own statement after the finish commits, one per batch of runs
    // that finished meanwhile (here, one run at a time: one per run).
    const notifies = per('NOTIFY done (after commit)');
    const runLevel = perRun - checkpoints - txOverhead - notifies;
    emit({
      workload: 'statements',
      system: 'durable',
      case: c.label,
      steps: c.steps,
      concurrency: 1,
      runs: config.runs,
      transactional: c.transactional,
      statements_per_run: round(perRun, 2),
      statements_per_step: round(checkpoints / c.steps, 2),
      run_level_statements: round(runLevel, 2),
      tx_statements_per_step: c.transactional ? round(txOverhead / c.steps, 2) : undefined,
      notify_statements_per_run: round(notifies, 2),
      budget_per_run: c.steps + 2 + 1 + (c.transactional ? 3 * c.steps : 0),
      budget_note: c.transactional
        ? '1 checkpoint per step + 2 per run + the NOTIFY after the finish; + BEGIN, business INSERT, COMMIT of each step transaction'
        : '1 per step + 2 per run + the NOTIFY after the finish (one per batch of finished runs; one per run one at a time)',
      statements: counted.byLabel,
    });
  }
  await app.close();
}

/** Starts `runs` runs that block in their second step (first recorded), then waits to be SIGKILLed. */
async function recoveryCrash(): Promise<void> {
  const app = await boot({ executorId: config.executorId, concurrency: config.runs });
  const client = app.get(DurableClient);
  const watch = await watcher();
  const started = performance.now();
  await runConcurrently(config.runs, 64, (i) => client.start('benchCrash', [i], { id: `crash-${i}` }));
  const { rows } = await watch.query(`SELECT count(*)::int AS n FROM durable.steps WHERE key = 'c1#1'`);
  let recorded = rows[0].n as number;
  while (recorded < config.runs) {
    await sleep(50);
    recorded = (await watch.query(`SELECT count(*)::int AS n FROM durable.steps WHERE key = 'c1#1'`)).rows[0]
      .n as number;
  }
  const running = await countRuns(watch, `status = 'running' AND executor = '${config.executorId}'`);
  emit({
    event: 'crash-ready',
    runs: config.runs,
    running,
    setup_s: round((performance.now() - started) / 1000),
  });
  await new Promise<never>(() => undefined); // the launcher kills this process with SIGKILL
}

/** The restart with the same executor id: time until every interrupted run has finished. */
async function recoveryResume(): Promise<void> {
  const processStart = performance.timeOrigin;
  const initStart = Date.now();
  const watch = await watcher();
  const ended = await finishes(watch);
  const vacuums = await autovacuums(watch);
  const sinceCheckpoint = await sinceCheckpointS(watch);
  const serverBefore = await serverCounters(watch);
  const loadBefore = loadAverage();
  const stalls = pressure();
  const cpu = process.cpuUsage();
  await startProfile();
  counter.start();
  const app = await boot({ executorId: config.executorId });
  const booted = Date.now();
  const doneAt = await ended.until(config.runs, 120_000);
  const counted = counter.stop();
  const clientCpuMs = cpuMs(cpu);
  await stopProfile();
  const loadAfter = loadAverage();
  const stalled = pressureBetween(stalls, pressure());
  const server = counterDelta(serverBefore, await serverCounters(watch));
  const autovacuumsDuring = (await autovacuums(watch)) - vacuums;
  const claims = counted.byLabel['UPDATE durable.runs (claim)'] ?? 0;
  const { rows } = await watch.query(
    `SELECT count(*)::int AS n,
            count(*) FILTER (WHERE output = to_jsonb(substr(id, 7)::int + 3))::int AS correct,
            max(attempts)::int AS max_attempts FROM durable.runs`,
  );
  const c1 = await watch.query(
    `SELECT count(*)::int AS n FROM durable.steps WHERE key IN ('c1#1','c2#1','c3#1')`,
  );
  emit({
    workload: 'recovery',
    system: 'durable',
    steps: 3,
    concurrency: config.durableConcurrency ?? 32,
    runs: config.runs,
    seconds: round((doneAt - initStart) / 1000),
    seconds_incl_process_start: round((doneAt - processStart) / 1000),
    app_boot_s: round((booted - initStart) / 1000),
    runs_per_s: round(config.runs / ((doneAt - initStart) / 1000), 1),
    // Seconds after the restart began at which each tenth of the runs had ended.
    progress_s: ended.progress(initStart, config.runs),
    // Autovacuum/autoanalyze passes on the runs and steps tables while recovering.
    autovacuums_during: autovacuumsDuring,
    // What the time depends on besides the library: the machine's load (1-minute average, /proc/loadavg)
    // before and after, this process's CPU, the claims (how many runs each brought back), and the
    // server's work meanwhile: WAL volume, full-page images (many right after a checkpoint), WAL fsyncs,
    // checkpoints, commits; and how long before the restart the last checkpoint began.
    load_before: loadBefore,
    load_after: loadAfter,
    // Share of the time some task of the machine waited for a CPU / for I/O (Linux PSI).
    ...stalled,
    client_cpu_pct: round((clientCpuMs / (doneAt - initStart)) * 100, 0),
    client_cpu_ms_per_run: round(clientCpuMs / config.runs, 3),
    claims,
    runs_per_claim: claims > 0 ? round(config.runs / claims, 1) : undefined,
    since_checkpoint_s: sinceCheckpoint,
    server,
    wal_bytes_per_run: server.wal_bytes ? round(server.wal_bytes / config.runs, 0) : undefined,
    correct_outputs: rows[0].correct,
    step_rows: c1.rows[0].n,
    pool: config.poolSize,
    statements_per_run: round(counted.total / config.runs, 2),
    statements: counted.byLabel,
  });
  await watch.end();
  await app.close();
}

/** Autovacuum and autoanalyze passes so far on the library's tables. */
async function autovacuums(client: pg.Client): Promise<number> {
  const { rows } = await client.query(
    `SELECT coalesce(sum(autovacuum_count + autoanalyze_count), 0)::int AS n FROM pg_stat_user_tables
     WHERE schemaname = 'durable'`,
  );
  return rows[0].n as number;
}

/** 10,000 runs parked in Durable.sleep: extra RSS, then the time to wake and finish them all. */
async function sleeping(): Promise<void> {
  const app = await boot();
  const client = app.get(DurableClient);
  const flows = app.get(BenchFlows);
  const watch = await watcher();
  await runConcurrently(config.warmup, config.concurrency, (i) => flows.three(i));
  await sleep(200);
  gc();
  await sleep(200);
  gc();
  const before = process.memoryUsage();
  const sleepMs = (config.sleepSeconds ?? 20) * 1000;
  const wakeAt = Date.now() + sleepMs;
  const startedAt = Date.now();
  await runConcurrently(config.runs, config.concurrency, (i) => client.start('benchSleep', [i, wakeAt]));
  const startedAllAt = Date.now();
  // All runs must be parked before the common wake instant for the memory figure to mean "10,000 parked".
  let parkedAt: number | undefined;
  try {
    parkedAt = await waitFor(
      watch,
      `status = 'sleeping'`,
      config.runs,
      Math.max(0, wakeAt - Date.now() - 1_000),
      50,
    );
  } catch {
    parkedAt = undefined;
  }
  const parked = await countRuns(watch, `status = 'sleeping'`);
  await sleep(200);
  gc();
  await sleep(200);
  gc();
  const after = process.memoryUsage();
  const mb = (x: number) => round(x / 1024 / 1024, 1);
  emit({
    workload: 'sleeping-memory',
    system: 'durable',
    steps: 2,
    concurrency: config.concurrency,
    runs: config.runs,
    parked,
    rss_mb: mb(after.rss - before.rss),
    heap_used_mb: mb(after.heapUsed - before.heapUsed),
    rss_before_mb: mb(before.rss),
    rss_after_mb: mb(after.rss),
    start_s: round((startedAllAt - startedAt) / 1000),
    all_parked_s: parkedAt === undefined ? null : round((parkedAt - startedAt) / 1000),
    parked_before_wake: parkedAt !== undefined,
  });
  const ended = await finishes(await watcher());
  await sleep(Math.max(0, wakeAt - Date.now() - 100));
  await startProfile();
  counter.start();
  const doneAt = await ended.until(config.runs, 300_000);
  const counted = counter.stop();
  await stopProfile();
  // Per run: from its due time (available_at, the recorded wake time) to its end (updated_at).
  const { rows } = await watch.query(
    `SELECT EXTRACT(EPOCH FROM max(updated_at))::float8 * 1000 AS last_done,
            EXTRACT(EPOCH FROM percentile_cont(0.5) WITHIN GROUP (ORDER BY updated_at - available_at))::float8 AS lag_p50,
            EXTRACT(EPOCH FROM max(updated_at - available_at))::float8 AS lag_max
     FROM durable.runs WHERE workflow = 'benchSleep'`,
  );
  emit({
    workload: 'sleeping-wake',
    system: 'durable',
    steps: 2,
    concurrency: config.durableConcurrency ?? config.concurrency,
    runs: config.runs,
    sleep_s: config.sleepSeconds ?? 20,
    poll_interval_ms: config.pollIntervalMs ?? 1000,
    seconds: round((doneAt - wakeAt) / 1000),
    seconds_db_clock: round(((rows[0].last_done as number) - wakeAt) / 1000),
    wake_lag_p50_s: round(rows[0].lag_p50 as number),
    wake_lag_max_s: round(rows[0].lag_max as number),
    runs_per_s: round(config.runs / ((doneAt - wakeAt) / 1000), 1),
    statements_per_run: round(counted.total / config.runs, 2),
    statements: counted.byLabel,
  });
  await watch.end();
  await app.close();
}

/** A worker process (client latency, scale): boots, says so, and executes runs until stdin closes. */
async function worker(): Promise<void> {
  const app = await boot();
  emit({ event: 'worker-ready' });
  await new Promise<void>((resolve) => process.stdin.on('end', resolve).resume());
  await app.close();
}

/** A client-only process (worker: false): start -> handle.result(), each timed; another process executes. */
async function clientLatency(): Promise<void> {
  const app = await boot({ worker: false });
  const client = app.get(DurableClient);
  const run = async (i: number) => (await client.start('bench3', [i])).result();
  await runConcurrently(config.warmup, config.concurrency, run);
  emit(
    await measure(SYSTEM, config, config.concurrency, run, counter, () =>
      warmRound(config.concurrency, run, poolOf(app), config.poolSize),
    ),
  );
  await app.close();
}

/**
 * Scale: the worker processes are up and idle; this client-only process starts every run in one
 * transaction (they become claimable at once, and one notification wakes all workers), then times them
 * until all have finished.
 */
async function scaleFeed(): Promise<void> {
  const app = await boot({ worker: false });
  const client = app.get(DurableClient);
  const watch = await watcher();
  const ended = await finishes(watch);
  await app.get(DataSource).transaction(async (manager) => {
    for (let i = 0; i < config.runs; i++) await client.start('bench3', [i], { manager });
  });
  const committed = Date.now();
  await startProfile();
  const doneAt = await ended.until(config.runs, 120_000);
  await stopProfile();
  const seconds = (doneAt - committed) / 1000;
  emit({
    workload: 'scale',
    system: SYSTEM,
    steps: config.steps,
    concurrency: config.concurrency,
    workers: config.workers,
    runs: config.runs,
    seconds: round(seconds),
    runs_per_s: round(config.runs / seconds, 1),
    progress_s: ended.progress(committed, config.runs),
  });
  await watch.end();
  await app.close();
}

/** The claim statement with a small and a large backlog of pending runs: time per claim, index use. */
async function claimCost(): Promise<void> {
  const app = await boot({ worker: false });
  const db = app.get(DataSource);
  const store = app.get(DurableStore, { strict: false });
  const served = { workflows: ['bench3'], versions: ['1'], maxStalls: [10] };
  for (const backlog of config.backlogs ?? [100_000]) {
    await db.query('TRUNCATE durable.runs, durable.steps');
    await db.query(
      `INSERT INTO durable.runs (id, workflow, version, status, input, available_at)
       SELECT 'backlog-' || i, 'bench3', '1', 'pending', jsonb_build_array(i),
              now() - interval '1 hour' + i * interval '1 millisecond'
       FROM generate_series(1, $1) i`,
      [backlog],
    );
    await db.query('VACUUM ANALYZE durable.runs');
    for (let i = 0; i < config.warmup; i++)
      await store.claimRuns('bench-claimer', served, config.concurrency);
    const stats = async () =>
      (
        await db.query(
          `SELECT idx_scan::int AS idx, idx_tup_fetch::int AS fetched FROM pg_stat_user_tables
           WHERE schemaname = 'durable' AND relname = 'runs'`,
        )
      )[0] as { idx: number; fetched: number };
    await db.query('SELECT pg_stat_force_next_flush()').catch(() => undefined);
    const before = await stats();
    const times: number[] = [];
    let claimed = 0;
    for (let i = 0; i < config.runs; i++) {
      const t = performance.now();
      claimed += (await store.claimRuns('bench-claimer', served, config.concurrency)).length;
      times.push(performance.now() - t);
    }
    await db.query('SELECT pg_stat_force_next_flush()').catch(() => undefined);
    await sleep(600); // statistics reach the view at most every 500 ms without the function above (PG < 15)
    const after = await stats();
    emit({
      workload: 'claim-cost',
      system: SYSTEM,
      steps: config.steps,
      concurrency: config.concurrency,
      backlog,
      runs: config.runs,
      claimed,
      p50_ms: round(percentile(times, 50)),
      p99_ms: round(percentile(times, 99)),
      ms_per_claimed_run: round(times.reduce((a, b) => a + b, 0) / Math.max(1, claimed), 4),
      idx_scans_per_claim: round((after.idx - before.idx) / config.runs, 1),
      rows_fetched_per_claim: round((after.fetched - before.fetched) / config.runs, 1),
    });
  }
  await app.close();
}

const workloads: Record<string, () => Promise<void>> = {
  suite,
  'client-worker': worker,
  'scale-worker': worker,
  'client-latency': clientLatency,
  scale: scaleFeed,
  'claim-cost': claimCost,
  statements,
  'recovery-crash': recoveryCrash,
  'recovery-resume': recoveryResume,
  sleeping,
};

const main = workloads[config.workload];
if (!main) throw new Error(`bench/durable.ts: unknown workload ${config.workload}`);
main().then(
  () => process.exit(0),
  (error: Error) => {
    process.stderr.write(`bench/durable.ts ${config.workload} failed: ${error.stack ?? error}\n`);
    process.exit(1);
  },
);
