// `npm run bench`: the library ("durable") against a hand-written node-postgres baseline ("raw-pg", plain
// parameterized queries) and the same baseline with named prepared statements ("raw-pg-prepared"), on
// the same PostgreSQL server, same pool size, same K (steps per run) and same concurrency.
//
//   npm run bench                    full run (a few minutes), readable table on stdout
//   npm run bench -- --json          one JSON object per line instead of the table
//   npm run bench -- --quick         small sizes, < 1 minute: a smoke check, numbers are not meaningful
//   npm run bench -- --profile       also writes V8 CPU profiles of each measured phase (every system)
//                                    to .data/bench-profiles/ and prints their top self-time functions
//   npm run bench -- --only=latency,throughput,transactional,tracing,statements,recovery,sleeping
//   npm run bench -- --verbose       pass the children's stderr through
//
// The launcher starts PostgreSQL once (scripts/postgres.mjs: DATABASE_URL, else testcontainers, else
// embedded PostgreSQL 18), creates a fresh database per child process and runs bench/raw.ts and
// bench/durable.ts (TypeScript via @swc-node/register) with DATABASE_URL and BENCH_CONFIG. For the
// latency/throughput/transactional workloads the three children boot and warm up, then their measured
// runs go in rounds that alternate between them (only one measures at a time), so load from other
// processes on the machine hits all systems alike; the server's CPU is sampled around each round. The
// launcher collects the children's JSON lines and prints the table. Progress goes to stderr. See
// bench/README.md for what each workload does.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { summarizeProfile } from '../bench/cpuprofile.mjs';
import { sampleServerCpu, serverCpuMsBetween } from '../bench/server-cpu.mjs';
import { createDatabase, dropDatabase, startPostgres } from './postgres.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const flag = (name) => argv.includes(`--${name}`);
const option = (name) => argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
const known = new Set(['json', 'quick', 'profile', 'verbose', 'only', 'help']);
for (const a of argv) {
  const name = a.replace(/^--/, '').split('=')[0];
  if (!a.startsWith('--') || !known.has(name)) {
    console.error(`unknown argument ${a}; see the header of scripts/bench.mjs`);
    process.exit(2);
  }
}
if (flag('help')) {
  console.log(
    fs
      .readFileSync(fileURLToPath(import.meta.url), 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('//'))
      .join('\n'),
  );
  process.exit(0);
}

const JSON_OUT = flag('json');
const QUICK = flag('quick');
const PROFILE = flag('profile');
const VERBOSE = flag('verbose');
const ONLY = option('only')?.split(',');
const POOL = 32;
/** Measured runs of each latency/throughput configuration are split into this many alternating rounds. */
const ROUNDS = QUICK ? 2 : 4;
const CONCURRENCY = 32;
const PROFILE_DIR = path.join(root, '.data', 'bench-profiles');

/** Sizes of the full bench and of --quick. */
const S = QUICK
  ? {
      latency: 30,
      latencyWarmup: 20,
      k3: 200,
      k10: 100,
      tx: 200,
      warmup: 40,
      recovery: 500,
      sleeping: 500,
      sleepS: 5,
      statements: 10,
    }
  : {
      latency: 200,
      latencyWarmup: 50,
      k3: 2000,
      k10: 1000,
      tx: 2000,
      warmup: 200,
      recovery: 10_000,
      sleeping: 10_000,
      sleepS: 40,
      statements: 50,
    };
/**
 * Sleeping: every run sleeps until one common instant, start + sleepS (the longer 40 s of the full bench
 * leaves time to park 10,000 runs first on a loaded 2-core machine). The sweep, and so the wake-up of
 * due sleeping runs, follows pollIntervalMs; the library default (1000) is kept.
 */
const SLEEP_POLL_MS = 1000;

const say = (msg) => process.stderr.write(`[bench] ${msg}\n`);
const started = Date.now();
const children = new Set();
let pgServer;

async function main() {
  pgServer = await startPostgres({ log: VERBOSE ? undefined : false });
  const server = await serverInfo(pgServer.url, pgServer.kind);
  say(
    `PostgreSQL ${server.version} (${server.kind}); pool ${POOL}, concurrency ${CONCURRENCY}${QUICK ? ', --quick sizes' : ''}`,
  );
  const records = [];
  const failures = [];
  const want = (group) => !ONLY || ONLY.includes(group);

  const pairs = [];
  if (want('latency'))
    pairs.push({ workload: 'latency', steps: 3, concurrency: 1, runs: S.latency, warmup: S.latencyWarmup });
  if (want('throughput')) {
    for (const [steps, runs] of [
      [3, S.k3],
      [10, S.k10],
    ]) {
      for (const concurrency of [1, CONCURRENCY]) {
        pairs.push({
          workload: 'throughput',
          steps,
          concurrency,
          runs,
          warmup: Math.round(S.warmup * (steps === 3 ? 1 : 0.5)),
        });
      }
    }
  }
  if (want('transactional')) {
    for (const concurrency of [1, CONCURRENCY])
      pairs.push({ workload: 'transactional', steps: 3, concurrency, runs: S.tx, warmup: S.warmup });
  }
  // A failing workload is reported (an "error" line) and the others still run.
  const attempt = async (what, fn) => {
    try {
      records.push(...(await fn()));
    } catch (error) {
      say(`${what} FAILED: ${error.message}`);
      failures.push({
        workload: what,
        system: 'durable',
        error: error.message.split('\n').slice(0, 12).join('\n'),
      });
    }
  };
  for (const p of pairs) {
    const config = { ...p, poolSize: POOL, durableConcurrency: CONCURRENCY, rounds: ROUNDS };
    const label = `${p.workload} K=${p.steps} c=${p.concurrency} runs=${p.runs}`;
    say(`${label}: raw-pg, durable and raw-pg-prepared, ${ROUNDS} alternating rounds`);
    await attempt(label, () => runSideBySide(config, `${p.workload}-k${p.steps}-c${p.concurrency}`));
  }

  // The cost of telemetry: the library as benchmarked (OpenTelemetry API installed, no SDK registered:
  // the no-op provider) against the same process with tracing and metrics off (BENCH_TELEMETRY=off).
  if (want('tracing')) {
    for (const concurrency of [1, CONCURRENCY]) {
      const config = {
        workload: 'throughput',
        steps: 3,
        concurrency,
        runs: S.k3,
        warmup: S.warmup,
        poolSize: POOL,
        durableConcurrency: CONCURRENCY,
        rounds: ROUNDS,
      };
      const label = `tracing K=3 c=${concurrency} runs=${S.k3}`;
      say(`${label}: durable with telemetry on (no-op provider) and off, ${ROUNDS} alternating rounds`);
      await attempt(label, async () =>
        (await runSideBySide(config, `tracing-c${concurrency}`, ['durable', 'durable-untraced'])).map(
          (r) => ({
            ...r,
            workload: 'tracing',
            system: r.variant === 'durable-untraced' ? 'durable-telemetry-off' : 'durable',
          }),
        ),
      );
    }
  }

  if (want('statements')) {
    say(`statements: ${S.statements} direct-call runs per case, counted at pg.Client.prototype.query`);
    const config = {
      workload: 'statements',
      steps: 3,
      concurrency: 1,
      runs: S.statements,
      warmup: 5,
      poolSize: POOL,
    };
    await attempt('statements', () => withDatabase((url) => runChild('durable', config, url)));
  }

  if (want('recovery')) await attempt('recovery', recovery);

  if (want('sleeping')) {
    say(`sleeping: ${S.sleeping} runs in Durable.sleep(~${S.sleepS}s), pollIntervalMs ${SLEEP_POLL_MS}`);
    const config = {
      workload: 'sleeping',
      steps: 2,
      concurrency: CONCURRENCY,
      durableConcurrency: CONCURRENCY,
      runs: S.sleeping,
      warmup: 100,
      poolSize: POOL,
      sleepSeconds: S.sleepS,
      pollIntervalMs: SLEEP_POLL_MS,
    };
    await attempt('sleeping', () =>
      withDatabase((url) => runChild('durable', config, url, { profile: 'sleeping', timeoutMs: 300_000 })),
    );
  }

  addRatios(records);
  const environment = {
    workload: 'environment',
    system: 'postgres',
    kind: server.kind,
    version: server.version,
    settings: server.settings,
    pool: POOL,
    concurrency: CONCURRENCY,
    quick: QUICK,
    node: process.version,
    cpus: (await import('node:os')).cpus().length,
    total_s: Math.round((Date.now() - started) / 100) / 10,
  };
  const targets = checkTargets(records);
  if (JSON_OUT) {
    for (const r of [environment, ...records, ...failures]) console.log(JSON.stringify(r));
    for (const t of targets) console.log(JSON.stringify({ workload: 'target', system: 'durable', ...t }));
  } else {
    printTables(environment, records, targets);
    for (const f of failures) console.log(`\nFAILED: ${f.workload}\n${f.error}`);
  }
  if (failures.length > 0) process.exitCode = 1;
  if (PROFILE) printProfiles();
}

// ---------------------------------------------------------------------------------------------
// children

let databaseSeq = 0;

async function withDatabase(fn) {
  const name = `bench_${process.pid}_${++databaseSeq}`;
  const url = await createDatabase(pgServer.url, name);
  try {
    return await fn(url);
  } finally {
    await dropDatabase(pgServer.url, name).catch((e) => say(`could not drop ${name}: ${e.message}`));
  }
}

/**
 * Runs bench/<system>.ts with the config; resolves with its JSON result lines. `onEvent` gets
 * {"event": ...} lines with the child process; `expectKill` accepts a death by SIGKILL.
 */
function runChild(system, config, url, options = {}) {
  return spawnChild(system, config, url, options).done;
}

/** Starts bench/<system>.ts; `done` resolves with its JSON result lines once it exits. */
function spawnChild(
  system,
  config,
  url,
  { onEvent, expectKill = false, extraEnv = {}, profile, timeoutMs = 240_000 } = {},
) {
  // 'raw-prepared' is bench/raw.ts with named prepared statements; 'durable-untraced' is bench/durable.ts
  // with tracing and metrics off.
  const file = { 'raw-prepared': 'raw', 'durable-untraced': 'durable' }[system] ?? system;
  if (system === 'raw-prepared') extraEnv = { ...extraEnv, BENCH_RAW_PREPARED: '1' };
  if (system === 'durable-untraced') extraEnv = { ...extraEnv, BENCH_TELEMETRY: 'off' };
  const profileEnv = {};
  if (PROFILE && profile) {
    // The child profiles its measured phase only (bench/support.ts startProfile/stopProfile).
    fs.mkdirSync(PROFILE_DIR, { recursive: true });
    profileEnv.BENCH_PROFILE = path.join(PROFILE_DIR, `${system}-${profile}.cpuprofile`);
  }
  const child = spawn(
    process.execPath,
    ['--expose-gc', '-r', '@swc-node/register', path.join(root, 'bench', `${file}.ts`)],
    {
      cwd: root,
      env: {
        ...process.env,
        ...extraEnv,
        ...profileEnv,
        DATABASE_URL: url,
        BENCH_CONFIG: JSON.stringify(config),
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  children.add(child);
  child.stdin.on('error', () => undefined);
  const records = [];
  const tail = [];
  const keep = (line) => {
    tail.push(line);
    if (tail.length > 40) tail.shift();
    if (VERBOSE) process.stderr.write(`  [${system}] ${line}\n`);
  };
  createInterface({ input: child.stdout }).on('line', (line) => {
    if (line.startsWith('{')) {
      try {
        const parsed = JSON.parse(line);
        if (parsed.event) onEvent?.(parsed, child);
        else records.push(parsed);
        return;
      } catch {
        // not ours: fall through
      }
    }
    keep(line);
  });
  createInterface({ input: child.stderr }).on('line', keep);
  const timer = setTimeout(() => {
    say(`${system} ${config.workload} did not finish within ${timeoutMs / 1000} s; killing it`);
    child.kill('SIGKILL');
  }, timeoutMs);
  const done = new Promise((resolve, reject) => {
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      if (code === 0 || (expectKill && signal === 'SIGKILL')) return resolve(records);
      reject(
        new Error(
          `bench/${system}.ts (${config.workload}) exited with ${signal ?? code}:\n${tail.join('\n')}`,
        ),
      );
    });
  });
  return { child, done };
}

/** Events of a child, consumed in order; waiting rejects once the child has exited. */
class Mailbox {
  events = [];
  waiters = [];
  closed;

  push(event) {
    this.events.push(event);
    this.flush();
  }

  close(error) {
    this.closed = error;
    this.flush();
  }

  next(type) {
    return new Promise((resolve, reject) => {
      this.waiters.push({ type, resolve, reject });
      this.flush();
    });
  }

  flush() {
    for (const waiter of [...this.waiters]) {
      const index = this.events.findIndex((e) => e.event === waiter.type);
      if (index >= 0) {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        waiter.resolve(this.events.splice(index, 1)[0]);
      } else if (this.closed) {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        waiter.reject(this.closed);
      }
    }
  }
}

/**
 * Runs raw-pg, durable and raw-pg-prepared side by side for one configuration: the processes boot and
 * warm up, then their measured rounds alternate (raw, durable, prepared, prepared, durable, raw, ...),
 * one at a time, so a change in the machine's load (other processes on a shared box) hits all alike.
 */
async function runSideBySide(config, profile, systems = ['raw', 'durable', 'raw-prepared']) {
  const urls = {};
  const withDatabases = async (names, fn) => {
    if (names.length === 0) return fn();
    return withDatabase((url) => {
      urls[names[0]] = url;
      return withDatabases(names.slice(1), fn);
    });
  };
  return withDatabases(systems, async () => {
    const boxes = Object.fromEntries(systems.map((s) => [s, new Mailbox()]));
    const started = {};
    for (const system of systems) {
      started[system] = spawnChild(system, config, urls[system], {
        profile,
        onEvent: (event) => boxes[system].push(event),
      });
      started[system].done.then(
        () => boxes[system].close(new Error(`bench/${system}.ts exited before its rounds were done`)),
        (error) => boxes[system].close(error),
      );
    }
    // Round 0 starts only once all have booted and warmed up.
    await Promise.all(systems.map((s) => boxes[s].next('round-ready')));
    const serverCpu = Object.fromEntries(systems.map((s) => [s, 0]));
    for (let round = 0; round < config.rounds; round++) {
      for (const system of round % 2 === 0 ? systems : [...systems].reverse()) {
        if (round > 0) await boxes[system].next('round-ready');
        const before = sampleServerCpu();
        started[system].child.stdin.write('go\n');
        await boxes[system].next('round-done');
        serverCpu[system] += serverCpuMsBetween(before, sampleServerCpu());
      }
    }
    const results = await Promise.all(systems.map((s) => started[s].done));
    // The server's CPU while each system measured (the others idle), per run.
    systems.forEach((system, i) => {
      for (const r of results[i]) {
        r.variant = system;
        if (Number.isFinite(serverCpu[system]) && r.runs) {
          r.server_cpu_ms_per_run = round(serverCpu[system] / r.runs, 3);
        }
      }
    });
    return results.flat();
  });
}

/** A process with a stable executor id is SIGKILLed with every run mid-flight; a restart recovers them. */
async function recovery() {
  const executorId = 'bench-recovery-executor';
  const runs = S.recovery;
  say(`recovery: raw-pg (claim, read steps, 2 step INSERTs, finish, by hand) for ${runs} runs`);
  const rawConfig = {
    workload: 'recovery',
    steps: 3,
    concurrency: CONCURRENCY,
    runs,
    warmup: 0,
    poolSize: POOL,
  };
  const raw = await withDatabase((url) => runChild('raw', rawConfig, url, { profile: 'recovery' }));
  return withDatabase(async (url) => {
    say(`recovery: starting ${runs} runs that block in step 2, then SIGKILL`);
    const crashConfig = {
      workload: 'recovery-crash',
      steps: 3,
      concurrency: 64,
      runs,
      warmup: 0,
      poolSize: POOL,
      executorId,
    };
    let ready;
    await runChild('durable', crashConfig, url, {
      expectKill: true,
      extraEnv: { BENCH_BLOCK: '1' },
      onEvent: (event, child) => {
        if (event.event !== 'crash-ready') return;
        ready = event;
        child.kill('SIGKILL');
      },
    });
    if (!ready) throw new Error('recovery: the crashing process died before all runs were in flight');
    say(
      `recovery: killed with ${ready.running} runs running (setup ${ready.setup_s} s); restarting with the same executor id`,
    );
    const resumeConfig = {
      workload: 'recovery-resume',
      steps: 3,
      concurrency: CONCURRENCY,
      durableConcurrency: CONCURRENCY,
      runs,
      warmup: 0,
      poolSize: POOL,
      executorId,
    };
    const out = await runChild('durable', resumeConfig, url, { profile: 'recovery' });
    for (const r of out) r.interrupted_running = ready.running;
    return [...raw, ...out];
  });
}

// ---------------------------------------------------------------------------------------------
// results

async function serverInfo(url, kind) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const version = (await client.query(`SELECT current_setting('server_version') AS v`)).rows[0].v;
    const names = [
      'fsync',
      'synchronous_commit',
      'shared_buffers',
      'max_connections',
      'wal_level',
      'work_mem',
    ];
    const { rows } = await client.query(`SELECT name, setting, unit FROM pg_settings WHERE name = ANY($1)`, [
      names,
    ]);
    const settings = Object.fromEntries(
      rows.map((r) => [
        r.name,
        r.unit && /^\d/.test(r.unit) ? `${r.setting}x${r.unit}` : `${r.setting}${r.unit ?? ''}`,
      ]),
    );
    return { kind, version, settings };
  } finally {
    await client.end();
  }
}

const keyOf = (r) => `${r.workload}|${r.steps}|${r.concurrency}`;

function addRatios(records) {
  const raw = new Map(records.filter((r) => r.system === 'raw-pg').map((r) => [keyOf(r), r]));
  const prepared = new Map(records.filter((r) => r.system === 'raw-pg-prepared').map((r) => [keyOf(r), r]));
  const ratio = (r, base) =>
    r.workload === 'latency'
      ? round(r.ms_per_run / base.ms_per_run, 2)
      : round(r.runs_per_s / base.runs_per_s, 2);
  for (const r of records) {
    if (r.system === 'raw-pg') r.ratio_to_raw = 1;
    const other = r.system === 'durable' ? prepared.get(keyOf(r)) : undefined;
    if (other) r.ratio_to_raw_prepared = ratio(r, other);
    const base = r.system === 'durable' ? raw.get(keyOf(r)) : undefined;
    if (!base) continue;
    r.ratio_to_raw = ratio(r, base);
    // The same ratio per alternating round (latency: of the mean times), to show the noise.
    const mine = r.runs_per_s_by_round;
    const theirs = base.runs_per_s_by_round;
    if (mine && theirs && mine.length === theirs.length) {
      r.ratio_by_round = mine.map((x, i) =>
        round(r.workload === 'latency' ? theirs[i] / x : x / theirs[i], 2),
      );
    }
  }
}

function checkTargets(records) {
  const find = (workload, steps, concurrency) =>
    records.find(
      (r) =>
        r.system === 'durable' &&
        r.workload === workload &&
        r.steps === steps &&
        r.concurrency === concurrency,
    );
  const out = [];
  const add = (target, measured, ok, unit = '') =>
    out.push({ target, measured: measured ?? null, unit, met: measured === undefined ? null : ok });
  const t = find('throughput', 3, CONCURRENCY);
  add('throughput K=3 c=32 >= 0.6 x raw', t?.ratio_to_raw, t?.ratio_to_raw >= 0.6, 'x raw');
  const l = find('latency', 3, 1);
  add('sequential latency K=3 <= 1.5 x raw', l?.ratio_to_raw, l?.ratio_to_raw <= 1.5, 'x raw');
  for (const c of [1, CONCURRENCY]) {
    const x = find('transactional', 3, c);
    add(`transactional K=3 c=${c} >= 0.7 x baseline`, x?.ratio_to_raw, x?.ratio_to_raw >= 0.7, 'x raw');
  }
  const rec = records.find((r) => r.workload === 'recovery' && r.system === 'durable');
  add(`recovery of ${rec?.runs ?? S.recovery} runs < 10 s`, rec?.seconds, rec?.seconds < 10, 's');
  const mem = records.find((r) => r.workload === 'sleeping-memory');
  add(`${mem?.runs ?? S.sleeping} sleeping runs < 64 MB extra RSS`, mem?.rss_mb, mem?.rss_mb < 64, 'MB');
  for (const s of records.filter((r) => r.workload === 'statements')) {
    add(
      `statements ${s.case} <= ${s.budget_per_run} per run`,
      s.statements_per_run,
      s.statements_per_run <= s.budget_per_run,
      'stmts',
    );
  }
  return out;
}

function printTables(env, records, targets) {
  const lines = [];
  const settings = Object.entries(env.settings)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
  lines.push(`PostgreSQL ${env.version} (${env.kind}; ${settings})`);
  lines.push(
    `Same server and settings for all systems, a fresh database per process; pool ${POOL} each (durable`,
  );
  lines.push(
    `also holds its LISTEN connection, beside the pool); DurableModule concurrency ${CONCURRENCY}; node ${env.node}, ${env.cpus} CPUs.`,
  );
  if (env.quick) lines.push('--quick: small sizes, a smoke check only: the numbers are not meaningful.');
  lines.push('');

  const paired = [];
  const seen = new Set();
  for (const r of records) {
    if (!['latency', 'throughput', 'transactional'].includes(r.workload) || seen.has(keyOf(r))) continue;
    seen.add(keyOf(r));
    const d = records.find((x) => x.system === 'durable' && keyOf(x) === keyOf(r));
    const w = records.find((x) => x.system === 'raw-pg' && keyOf(x) === keyOf(r));
    const p = records.find((x) => x.system === 'raw-pg-prepared' && keyOf(x) === keyOf(r));
    paired.push([r, d, w, p]);
  }
  const target = (r) =>
    r.workload === 'latency'
      ? '<= 1.5x'
      : r.workload === 'transactional'
        ? '>= 0.7'
        : r.concurrency === CONCURRENCY && r.steps === 3
          ? '>= 0.6'
          : '';
  lines.push(
    table(
      [
        'workload',
        'K',
        'C',
        'runs',
        'durable runs/s',
        'raw-pg runs/s',
        'ratio',
        'ratio by round',
        'prepared raw runs/s',
        'ratio to it',
        'durable ms/run',
        'raw ms/run',
        'durable p99',
        'raw p99',
        'stmts/run d|raw',
        'client CPU d|raw|prep',
        'server CPU ms/run d|raw|prep',
        'target',
      ],
      paired.map(([r, d, w, p]) => [
        r.workload === 'latency' ? 'latency (median)' : r.workload,
        r.steps,
        r.concurrency,
        r.runs,
        d?.runs_per_s ?? '-',
        w?.runs_per_s ?? '-',
        d?.ratio_to_raw ?? '-',
        d?.ratio_by_round?.join(' ') ?? '-',
        p?.runs_per_s ?? '-',
        d?.ratio_to_raw_prepared ?? '-',
        d?.ms_per_run ?? '-',
        w?.ms_per_run ?? '-',
        d?.p99_ms ?? '-',
        w?.p99_ms ?? '-',
        `${d?.statements_per_run ?? '-'} | ${w?.statements_per_run ?? '-'}`,
        `${d?.client_cpu_pct ?? '-'}% | ${w?.client_cpu_pct ?? '-'}% | ${p?.client_cpu_pct ?? '-'}%`,
        `${d?.server_cpu_ms_per_run ?? '-'} | ${w?.server_cpu_ms_per_run ?? '-'} | ${p?.server_cpu_ms_per_run ?? '-'}`,
        target(r),
      ]),
    ),
  );
  lines.push(
    '  ratio: durable runs/s / raw runs/s (latency: durable median / raw median); ms/run under load is the mean time of one run.',
  );
  lines.push(
    '  raw-pg sends plain parameterized queries, as most hand-written code does (the targets are against it); the library',
  );
  lines.push(
    '  sends named prepared statements, so "prepared raw" is the same loop with them too: the stricter floor.',
  );
  lines.push(
    `  ratio by round: the runs are measured in ${ROUNDS} rounds alternating between the systems (all processes up,`,
  );
  lines.push('  the idle ones waiting); the spread of the per-round ratios shows the noise of the machine.');
  lines.push('  client CPU: CPU time of the bench process / wall time (100% = one core busy).');
  lines.push(
    '  server CPU: CPU time of all postgres processes on this machine while that system measured, per run (Linux /proc).',
  );
  lines.push('');

  const traced = records.filter((r) => r.workload === 'tracing' && r.system === 'durable');
  if (traced.length) {
    lines.push(
      'Cost of telemetry (K=3 throughput, client.start + result; same rounds alternating between the two)',
    );
    lines.push(
      table(
        [
          'C',
          'runs',
          'telemetry on runs/s',
          'off runs/s',
          'cost',
          'cost by round',
          'on ms/run',
          'off ms/run',
        ],
        traced.map((on) => {
          const off = records.find(
            (x) =>
              x.workload === 'tracing' &&
              x.system === 'durable-telemetry-off' &&
              x.concurrency === on.concurrency,
          );
          const cost = (a, b) => `${round((1 - a / b) * 100, 1)}%`;
          const byRound = on.runs_per_s_by_round?.map((x, i) => cost(x, off?.runs_per_s_by_round?.[i]));
          return [
            on.concurrency,
            on.runs,
            on.runs_per_s,
            off?.runs_per_s ?? '-',
            off ? cost(on.runs_per_s, off.runs_per_s) : '-',
            byRound?.join(' ') ?? '-',
            on.ms_per_run,
            off?.ms_per_run ?? '-',
          ];
        }),
      ),
    );
    lines.push(
      '  on: the library as benchmarked everywhere here (@opentelemetry/api installed, no SDK registered: the no-op',
    );
    lines.push(
      '  provider); off: DurableModule { tracing: false, metrics: false }. cost: 1 - on/off throughput (target < 5%).',
    );
    lines.push('');
  }

  const stmts = records.filter((r) => r.workload === 'statements');
  if (stmts.length) {
    lines.push('Statements per direct-call run (counted at pg.Client.prototype.query)');
    lines.push(
      table(
        ['case', 'runs', 'per run', 'checkpoints/step', 'run-level', 'budget/run', 'breakdown per run'],
        stmts.map((s) => [
          s.case,
          s.runs,
          s.statements_per_run,
          s.statements_per_step,
          s.run_level_statements,
          `${s.budget_per_run} (${s.budget_note})`,
          Object.entries(s.statements)
            .map(([k, v]) => `${k} ${round(v / s.runs, 2)}`)
            .join('; '),
        ]),
      ),
    );
    lines.push('');
  }

  const rec = records.find((r) => r.workload === 'recovery' && r.system === 'durable');
  const recRaw = records.find((r) => r.workload === 'recovery' && r.system === 'raw-pg');
  if (rec) {
    lines.push(
      `Recovery: ${rec.runs} runs interrupted by SIGKILL (${rec.interrupted_running} running, each blocked in step 2 of 3),`,
    );
    lines.push(
      `  restarted with the same executorId: all finished ${rec.seconds} s after the restart began (app boot incl. startup`,
    );
    lines.push(
      `  sweep ${rec.app_boot_s} s; ${rec.seconds_incl_process_start} s incl. node/TypeScript process start); ${rec.runs_per_s} runs/s;`,
    );
    lines.push(
      `  ${rec.correct_outputs}/${rec.runs} correct outputs, ${rec.step_rows} step rows; concurrency ${rec.concurrency}, pool ${rec.pool}; ${rec.statements_per_run} statements/run.`,
    );
    if (recRaw) {
      lines.push(
        `  raw-pg, the same work by hand (claim 1, read steps, 2 INSERTs, finish; ${recRaw.concurrency} workers): ${recRaw.seconds} s,`,
      );
      lines.push(`  ${recRaw.runs_per_s} runs/s; durable/raw throughput ratio ${rec.ratio_to_raw ?? '-'}.`);
    }
    lines.push('');
  }
  const mem = records.find((r) => r.workload === 'sleeping-memory');
  const wake = records.find((r) => r.workload === 'sleeping-wake');
  if (mem) {
    lines.push(
      `Sleeping: ${mem.runs} runs parked in Durable.sleep: +${mem.rss_mb} MB RSS (heap used ${mem.heap_used_mb >= 0 ? '+' : ''}${mem.heap_used_mb} MB;`,
    );
    lines.push(
      mem.parked_before_wake
        ? `  RSS ${mem.rss_before_mb} -> ${mem.rss_after_mb} MB, after gc); started in ${mem.start_s} s, all parked after ${mem.all_parked_s} s.`
        : `  RSS ${mem.rss_before_mb} -> ${mem.rss_after_mb} MB, after gc); started in ${mem.start_s} s; only ${mem.parked}/${mem.runs} parked 1 s before the wake instant (memory measured then).`,
    );
  }
  if (wake) {
    lines.push(
      `  All due at one instant, ${wake.sleep_s} s after the first start: all finished ${wake.seconds} s after it (${wake.runs_per_s} runs/s);`,
    );
    lines.push(
      `  per run, due -> finished: median ${wake.wake_lag_p50_s} s, max ${wake.wake_lag_max_s} s. pollIntervalMs ${wake.poll_interval_ms} (library default),`,
    );
    lines.push(`  DurableModule concurrency ${wake.concurrency}.`);
  }
  if (mem || wake) lines.push('');

  lines.push('Targets');
  lines.push(
    table(
      ['target', 'measured', 'result'],
      targets.map((t) => [
        t.target,
        t.measured === null ? '-' : `${t.measured} ${t.unit}`,
        t.met === null ? 'not run' : t.met ? 'met' : 'MISSED',
      ]),
    ),
  );
  lines.push(`\nTotal ${env.total_s} s.`);
  console.log(lines.join('\n'));
}

function printProfiles() {
  if (!fs.existsSync(PROFILE_DIR)) return;
  const files = fs.readdirSync(PROFILE_DIR).filter((f) => f.endsWith('.cpuprofile'));
  for (const file of files) {
    const summary = summarizeProfile(path.join(PROFILE_DIR, file), { top: 15, root });
    console.log(
      `\nCPU profile ${path.join('.data/bench-profiles', file)}: busy ${summary.busyMs} ms of ${summary.totalMs} ms`,
    );
    console.log(
      table(
        ['area', 'self ms', '% busy'],
        summary.byArea.slice(0, 10).map((a) => [a.area, a.selfMs, a.pctOfBusy]),
      ),
    );
    console.log(
      table(
        ['function', 'location', 'self ms', '% busy'],
        summary.top.map((t) => [t.function, t.location, t.selfMs, t.pctOfBusy]),
      ),
    );
  }
}

function table(header, rows) {
  const cells = [header, ...rows].map((row) => row.map((c) => String(c)));
  const widths = header.map((_, i) => Math.max(...cells.map((row) => row[i].length)));
  const fmt = (row) =>
    row
      .map((c, i) => (typeof rows[0]?.[i] === 'number' ? c.padStart(widths[i]) : c.padEnd(widths[i])))
      .join('  ');
  return [fmt(cells[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(fmt)].join('\n');
}

function round(x, digits) {
  return Number.isFinite(x) ? Number(x.toFixed(digits)) : x;
}

async function shutdown(code) {
  for (const child of children) child.kill('SIGKILL');
  await pgServer?.stop().catch(() => undefined);
  process.exit(code);
}

process.on('SIGINT', () => void shutdown(130));
process.on('SIGTERM', () => void shutdown(143));

if (PROFILE) fs.rmSync(PROFILE_DIR, { recursive: true, force: true });
main().then(
  () => shutdown(process.exitCode ?? 0),
  (error) => {
    console.error(`[bench] failed: ${error.stack ?? error}`);
    void shutdown(1);
  },
);
