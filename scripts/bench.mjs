// `npm run bench`: the library ("durable") against a hand-written node-postgres baseline ("raw-pg",
// plain parameterized queries) and DBOS Transact ("dbos"), on one PostgreSQL server with fsync on, each
// system on its own database, with the same pool size and the same concurrency.
//
//   npm run bench                    full run (under 10 minutes), readable tables on stdout
//   npm run bench -- --fsync=off     the same on a server with fsync off (default --fsync=on)
//   npm run bench -- --json          one JSON object per line instead of the tables
//   npm run bench -- --tables=<file> also write the readable tables to <file> (with --json: both from one run)
//   npm run bench -- --quick         small sizes, a smoke check: the numbers are not meaningful
//   npm run bench -- --profile       also writes V8 CPU profiles of each measured phase (every system)
//                                    to .data/bench-profiles/ and prints their top self-time functions
//   npm run bench -- --only=latency,throughput,transactional,tracing,client,statements,scale,claim,recovery,notify,sleeping
//   npm run bench -- --systems=raw-pg,durable,durable-async,dbos,raw-pg-prepared   (default: all but the
//                                    prepared baseline; raw-pg is always measured: ratios are against it)
//   npm run bench -- --verbose       pass the children's stderr through
//
// The launcher starts its own PostgreSQL (scripts/postgres.mjs: DATABASE_URL, else testcontainers, else
// embedded PostgreSQL 18) with fsync and synchronous_commit as asked, checks that the server really runs
// with them, creates a fresh database per child process and runs bench/raw.ts, bench/durable.ts and
// bench/dbos.ts (TypeScript via @swc-node/register) with DATABASE_URL and BENCH_CONFIG. For the
// latency/throughput/transactional/client workloads the children boot and warm up, then their measured
// rounds alternate between them (only one measures at a time, each warms its pool before its round), so
// load from other processes on the machine hits all systems alike; the server's CPU is sampled around
// each round's measured runs (after its warm-up). The launcher collects the children's JSON lines and
// prints the tables; every JSON line carries "fsync". Progress goes to stderr. See bench/README.md for
// what each workload does.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { summarizeProfile } from '../bench/cpuprofile.mjs';
import { postmasterOf, sampleServerCpu, serverCpuMsBetween } from '../bench/server-cpu.mjs';
import { createDatabase, dropDatabase, startPostgres } from './postgres.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const flag = (name) => argv.includes(`--${name}`);
const option = (name) => argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
const known = new Set(['json', 'tables', 'quick', 'profile', 'verbose', 'only', 'systems', 'fsync', 'help']);
for (const a of argv) {
  const name = a.replace(/^--/, '').split('=')[0];
  if (!a.startsWith('--') || !known.has(name)) {
    console.error(`unknown argument ${a}; see the header of scripts/bench.mjs (--help)`);
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
const TABLES = option('tables');
const QUICK = flag('quick');
const PROFILE = flag('profile');
const VERBOSE = flag('verbose');
const ONLY = option('only')?.split(',');
const FSYNC = option('fsync') ?? 'on';
if (FSYNC !== 'on' && FSYNC !== 'off') {
  console.error(`--fsync must be on or off, got ${FSYNC}`);
  process.exit(2);
}

/** Each system: the child file and extra environment. The names are the JSON lines' "system". */
const SYSTEMS = {
  'raw-pg': { file: 'raw', env: {} },
  'raw-pg-prepared': { file: 'raw', env: { BENCH_RAW_PREPARED: '1' } },
  durable: { file: 'durable', env: {} },
  'durable-async': { file: 'durable', env: { BENCH_ASYNC_CHECKPOINTS: '1' } },
  // The tracing workload only: the library with tracing and metrics off (bench/app.ts).
  'durable-telemetry-off': { file: 'durable', env: { BENCH_TELEMETRY: 'off' } },
  dbos: { file: 'dbos', env: {} },
};
const DEFAULT_SYSTEMS = ['raw-pg', 'durable', 'durable-async', 'dbos'];
const CHOSEN = [
  'raw-pg',
  ...(option('systems')?.split(',') ?? DEFAULT_SYSTEMS).filter((s) => s !== 'raw-pg'),
  'durable-telemetry-off',
];
for (const s of CHOSEN) {
  if (!SYSTEMS[s]) {
    console.error(`unknown system ${s}; known: ${Object.keys(SYSTEMS).join(', ')}`);
    process.exit(2);
  }
}
/** Which systems a workload applies to (DBOS has no transactional step in its core package). */
const SUPPORTS = {
  latency: ['raw-pg', 'durable', 'durable-async', 'dbos', 'raw-pg-prepared'],
  throughput: ['raw-pg', 'durable', 'durable-async', 'dbos', 'raw-pg-prepared'],
  // Transactional steps and their checkpoints commit synchronously with asyncCheckpoints too.
  transactional: ['raw-pg', 'durable', 'raw-pg-prepared'],
  'client-latency': ['durable', 'dbos'],
  // The cost of telemetry: the library as benchmarked everywhere (OpenTelemetry API installed, no SDK
  // registered: the no-op provider) against the same child with tracing and metrics off.
  tracing: ['durable', 'durable-telemetry-off'],
};
const systemsFor = (workload) => SUPPORTS[workload].filter((s) => CHOSEN.includes(s));

const POOL = 32;
/**
 * Each latency/throughput/transactional/client configuration is measured in this many rounds per system,
 * alternating between the systems, each round of a fixed duration (S.roundMs: the runs started in it
 * are timed until the last has finished), so the time of the whole bench does not depend on the disk.
 */
const ROUNDS = QUICK ? 2 : 4;
const CONCURRENCY = 32;
const PROFILE_DIR = path.join(root, '.data', 'bench-profiles');

/** Sizes of the full bench and of --quick. */
const S = QUICK
  ? {
      roundMs: 500,
      latencyWarmup: 20,
      warmup: 40,
      recovery: 500,
      sleeping: 500,
      sleepS: 5,
      statements: 10,
      scale: 300,
      claimBacklogs: [2_000, 20_000],
      claims: 20,
    }
  : {
      roundMs: 2000,
      latencyWarmup: 50,
      warmup: 100,
      recovery: 10_000,
      sleeping: 10_000,
      sleepS: 40,
      statements: 50,
      scale: 3000,
      claimBacklogs: [2_000, 100_000],
      claims: 50,
    };
/** Client latency: starts in flight at once from the client process (each start -> result timed alone). */
const CLIENT_CONCURRENCY = 4;
const SCALE_WORKERS = [1, 2, 4];
/**
 * Sleeping: every run sleeps until one common instant, start + sleepS (the longer 40 s of the full bench
 * leaves time to park 10,000 runs first on a loaded 2-core machine). The sweep, and so the wake-up of
 * due sleeping runs, follows pollIntervalMs; the library default (1000) is kept.
 */
const SLEEP_POLL_MS = 1000;

/** The machine's 1-minute load average (2 cores shared with other work: read the numbers with it). */
function loadAverage() {
  try {
    return Number(fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
  } catch {
    return round(os.loadavg()[0], 2);
  }
}

const started = Date.now();
const say = (msg) => process.stderr.write(`[bench +${Math.round((Date.now() - started) / 1000)}s] ${msg}\n`);
const children = new Set();
let pgServer;
/** The bench server's postmaster pid (for its CPU), when it runs on this machine. */
let postmaster;

async function main() {
  const loadAtStart = loadAverage();
  pgServer = await startPostgres({
    log: VERBOSE ? undefined : false,
    // The last -c of a setting wins: these override the throwaway cluster's fsync=off.
    postgresFlags: ['-c', `fsync=${FSYNC}`, '-c', 'synchronous_commit=on', '-c', 'max_connections=300'],
  });
  const server = await serverInfo(pgServer.url, pgServer.kind);
  postmaster = server.postmaster;
  say(
    `PostgreSQL ${server.version} (${server.kind}; fsync=${server.settings.fsync}, synchronous_commit=${server.settings.synchronous_commit}, ` +
      `${server.commit_ms} ms per single-row commit); pool ${POOL}, concurrency ${CONCURRENCY}, systems ${CHOSEN.join(', ')}` +
      `${QUICK ? ', --quick sizes' : ''}`,
  );
  const records = [];
  const failures = [];
  const want = (group) => !ONLY || ONLY.includes(group);

  const configs = [];
  if (want('latency'))
    configs.push({ workload: 'latency', steps: 3, concurrency: 1, warmup: S.latencyWarmup });
  if (want('throughput')) {
    // One run at a time is the latency row; throughput is measured at the full concurrency.
    for (const steps of [3, 10]) {
      const warmup = Math.round(S.warmup * (steps === 3 ? 1 : 0.5));
      configs.push({ workload: 'throughput', steps, concurrency: CONCURRENCY, warmup });
    }
  }
  if (want('transactional')) {
    configs.push({ workload: 'transactional', steps: 3, concurrency: CONCURRENCY, warmup: S.warmup });
  }
  if (want('tracing')) {
    for (const concurrency of [1, CONCURRENCY])
      configs.push({ workload: 'tracing', steps: 3, concurrency, warmup: S.warmup });
  }
  // A failing workload is reported (an "error" line) and the others still run.
  const attempt = async (what, fn) => {
    try {
      records.push(...(await fn()));
    } catch (error) {
      say(`${what} FAILED: ${error.message}`);
      failures.push({
        workload: what,
        system: '-',
        error: error.message.split('\n').slice(0, 12).join('\n'),
      });
    }
  };
  if (configs.length > 0) {
    const common = {
      runs: 0,
      roundMs: S.roundMs,
      poolSize: POOL,
      durableConcurrency: CONCURRENCY,
      rounds: ROUNDS,
    };
    const suite = configs.map((c) => ({ ...common, ...c }));
    const systems = CHOSEN.filter((s) => suite.some((c) => SUPPORTS[c.workload].includes(s)));
    say(`${suite.length} configurations side by side: ${systems.join(', ')}, booting`);
    await attempt('latency/throughput/transactional', () => runSideBySide(suite, systems, 'suite'));
  }

  if (want('client')) {
    const systems = systemsFor('client-latency');
    const config = {
      workload: 'client-latency',
      steps: 3,
      concurrency: CLIENT_CONCURRENCY,
      runs: 0,
      roundMs: Math.max(S.roundMs, 3000),
      warmup: 10,
      poolSize: POOL,
      durableConcurrency: CONCURRENCY,
      rounds: ROUNDS,
    };
    say(`client-latency: start from a client-only process -> result(), ${systems.join(', ')}`);
    await attempt('client-latency', () => runSideBySide([config], systems, 'client', { worker: true }));
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

  if (want('scale')) await attempt('scale', scale);
  if (want('claim')) await attempt('claim-cost', claimCost);
  if (want('recovery')) await attempt('recovery', recovery);
  if (want('notify')) await attempt('notify-commit', notifyCommit);

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
    commit_ms: server.commit_ms,
    pool: POOL,
    concurrency: CONCURRENCY,
    systems: CHOSEN,
    quick: QUICK,
    node: process.version,
    dbos: dbosVersion(),
    cpus: os.cpus().length,
    // The machine's 1-minute load average (/proc/loadavg) when the bench began and when it ended.
    load_start: loadAtStart,
    load_end: loadAverage(),
    total_s: Math.round((Date.now() - started) / 100) / 10,
  };
  const targets = checkTargets(records);
  const lines = [
    environment,
    ...records,
    ...failures,
    ...targets.map((t) => ({ workload: 'target', system: t.system ?? 'durable', ...t })),
  ].map((r) => ({ ...r, fsync: server.settings.fsync }));
  const readable = [
    tablesOf(environment, records, targets),
    ...failures.map((f) => `\nFAILED: ${f.workload}\n${f.error}`),
  ].join('\n');
  if (JSON_OUT) {
    for (const r of lines) console.log(JSON.stringify(r));
  } else {
    console.log(readable);
  }
  if (TABLES) fs.writeFileSync(TABLES, `${readable}\n`);
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

/** Databases for several systems at once: `fn` gets { system: url }. */
async function withDatabases(names, fn, urls = {}) {
  if (names.length === 0) return fn(urls);
  return withDatabase((url) => withDatabases(names.slice(1), fn, { ...urls, [names[0]]: url }));
}

/**
 * Runs the system's child with the config; resolves with its JSON result lines. `onEvent` gets
 * {"event": ...} lines with the child process; `expectKill` accepts a death by SIGKILL.
 */
function runChild(system, config, url, options = {}) {
  return spawnChild(system, config, url, options).done;
}

/** Starts the system's child; `done` resolves with its JSON result lines once it exits. */
function spawnChild(
  system,
  config,
  url,
  { onEvent, expectKill = false, extraEnv = {}, profile, timeoutMs = 900_000 } = {},
) {
  const { file, env } = SYSTEMS[system];
  const profileEnv = {};
  if (PROFILE && profile) {
    // The child profiles its measured phase only (bench/support.ts startProfile/stopProfile).
    fs.mkdirSync(PROFILE_DIR, { recursive: true });
    profileEnv.BENCH_PROFILE = path.join(PROFILE_DIR, `${system}-${profile}`);
  }
  const child = spawn(
    process.execPath,
    ['--expose-gc', '-r', '@swc-node/register', path.join(root, 'bench', `${file}.ts`)],
    {
      cwd: root,
      env: {
        ...process.env,
        ...env,
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
          `bench/${file}.ts as ${system} (${config.workload}) exited with ${signal ?? code}:\n${tail.join('\n')}`,
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

/** Starts a child whose events go to a mailbox. */
function startWithMailbox(system, config, url, options = {}) {
  const box = new Mailbox();
  const started = spawnChild(system, config, url, { ...options, onEvent: (event) => box.push(event) });
  started.done.then(
    () => box.close(new Error(`${system} (${config.workload}) exited early`)),
    (error) => box.close(error),
  );
  return { ...started, box };
}

/**
 * Runs the systems side by side over a list of configurations: one process per system (a database
 * each) boots and warms up for all of them, then for each configuration their measured rounds alternate
 * (a, b, c, c, b, a, ...), one at a time, so a change in the machine's load (other processes on a shared
 * box) hits all alike. A system measures only the configurations it supports. With `worker` (the
 * client-latency workload, one configuration), each system first gets a worker process of its own on the
 * same database, and the measuring child is a client-only process.
 */
async function runSideBySide(configs, systems, profile, { worker = false } = {}) {
  const plan = Object.fromEntries(
    systems.map((s) => [s, configs.filter((c) => SUPPORTS[c.workload].includes(s))]),
  );
  return withDatabases(systems, async (urls) => {
    const workers = [];
    try {
      if (worker) {
        for (const system of systems) {
          const w = startWithMailbox(system, { ...configs[0], workload: 'client-worker' }, urls[system]);
          workers.push(w);
          await w.box.next('worker-ready');
        }
      }
      const childConfig = (system) =>
        worker ? configs[0] : { ...configs[0], workload: 'suite', configs: plan[system] };
      const running = Object.fromEntries(
        systems.map((s) => [s, startWithMailbox(s, childConfig(s), urls[s], { profile })]),
      );
      // The first round starts once all have booted and warmed up.
      await Promise.all(systems.map((s) => running[s].box.next('round-ready')));
      const ready = Object.fromEntries(systems.map((s) => [s, true]));
      const serverCpu = new Map();
      for (const config of configs) {
        const participants = systems.filter((s) => plan[s].includes(config));
        const label = `${config.workload} K=${config.steps} c=${config.concurrency}`;
        say(
          `${label}: ${participants.join(', ')}, ${config.rounds} alternating rounds of ${config.roundMs / 1000} s`,
        );
        for (let round = 0; round < config.rounds; round++) {
          for (const system of round % 2 === 0 ? participants : [...participants].reverse()) {
            if (!ready[system]) await running[system].box.next('round-ready');
            ready[system] = false;
            running[system].child.stdin.write('go\n');
            // Sampled after the round's warm-up (connections reopened, a few runs), as the client's CPU is.
            await running[system].box.next('round-warm');
            const before = sampleServerCpu(postmaster);
            await running[system].box.next('round-done');
            const key = `${keyOf(config)}|${system}`;
            serverCpu.set(
              key,
              (serverCpu.get(key) ?? 0) + serverCpuMsBetween(before, sampleServerCpu(postmaster)),
            );
          }
        }
      }
      for (const s of systems) running[s].child.stdin.end();
      const results = (await Promise.all(systems.map((s) => running[s].done))).flat();
      // The server's CPU while each system measured (the others idle), per run.
      for (const r of results) {
        const ms = serverCpu.get(`${keyOf(r)}|${r.system}`);
        if (Number.isFinite(ms) && r.runs) r.server_cpu_ms_per_run = round(ms / r.runs, 3);
      }
      return results;
    } finally {
      for (const w of workers) w.child.stdin.end();
      await Promise.allSettled(workers.map((w) => w.done));
    }
  });
}

/**
 * Scale-out: `n` worker processes on one database, booted and idle; a client-only process then starts
 * the runs in one transaction (one commit, one notification wakes every worker) and times them until all
 * have finished. Runs/s with 1, 2 and 4 processes.
 */
async function scale() {
  const out = [];
  for (const workers of SCALE_WORKERS) {
    say(`scale: ${S.scale} runs (K=3) with ${workers} worker process(es) of concurrency ${CONCURRENCY}`);
    const config = {
      workload: 'scale',
      steps: 3,
      concurrency: CONCURRENCY,
      durableConcurrency: CONCURRENCY,
      runs: S.scale,
      warmup: 0,
      poolSize: POOL,
      workers,
    };
    const records = await withDatabase(async (url) => {
      const procs = [];
      try {
        for (let i = 0; i < workers; i++) {
          procs.push(startWithMailbox('durable', { ...config, workload: 'scale-worker' }, url));
        }
        await Promise.all(procs.map((p) => p.box.next('worker-ready')));
        const before = sampleServerCpu(postmaster);
        const records = await runChild('durable', config, url, { profile: `scale-${workers}` });
        const serverMs = serverCpuMsBetween(before, sampleServerCpu(postmaster));
        for (const r of records) r.server_cpu_ms_per_run = round(serverMs / r.runs, 3);
        return records;
      } finally {
        for (const p of procs) p.child.stdin.end();
        await Promise.allSettled(procs.map((p) => p.done));
      }
    });
    out.push(...records);
  }
  const one = out.find((r) => r.workers === 1);
  for (const r of out) if (one) r.ratio_to_one = round(r.runs_per_s / one.runs_per_s, 2);
  return out;
}

/** The claim statement's cost with a small and a large backlog of pending runs. */
async function claimCost() {
  say(`claim cost: ${S.claims} claims of ${CONCURRENCY} with ${S.claimBacklogs.join(' and ')} runs pending`);
  const config = {
    workload: 'claim-cost',
    steps: 3,
    concurrency: CONCURRENCY,
    runs: S.claims,
    warmup: 5,
    poolSize: POOL,
    backlogs: S.claimBacklogs,
  };
  return withDatabase((url) => runChild('durable', config, url));
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
  const raw = await withDatabase(async (url) => {
    const before = sampleServerCpu(postmaster);
    const records = await runChild('raw-pg', rawConfig, url, { profile: 'recovery' });
    const serverMs = serverCpuMsBetween(before, sampleServerCpu(postmaster));
    for (const r of records) r.server_cpu_ms_per_run = round(serverMs / r.runs, 3);
    return records;
  });
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
    const before = sampleServerCpu(postmaster);
    const out = await runChild('durable', resumeConfig, url, { profile: 'recovery' });
    // The server's CPU from the restart until every run ended (and the child's exit), per run.
    const serverMs = serverCpuMsBetween(before, sampleServerCpu(postmaster));
    for (const r of out) {
      r.interrupted_running = ready.running;
      r.setup_s = ready.setup_s;
      r.server_cpu_ms_per_run = round(serverMs / r.runs, 3);
      const base = raw.find((x) => x.workload === 'recovery');
      // A time: lower is better (as for latency).
      if (base?.seconds) r.ratio_to_raw = round(r.seconds / base.seconds, 2);
    }
    return [...raw, ...out];
  });
}

/**
 * What a NOTIFY in a committing transaction costs on this server, without the library: 32 connections
 * each committing one-row INSERTs for a fixed time, (a) plain, (b) with pg_notify in the same statement
 * (as the library's finish sends its 'done' notification), (c) the plain INSERT followed by pg_notify in
 * a transaction of its own with synchronous_commit off. PostgreSQL holds a cluster-wide lock from a
 * notifying transaction's pre-commit until its commit has been flushed (the notification queue must be
 * in commit order), so with fsync on, notifying commits cannot share a WAL flush: they serialize.
 */
async function notifyCommit() {
  const seconds = QUICK ? 1 : 2;
  say(
    `notify-commit: ${CONCURRENCY} connections committing INSERTs, with and without NOTIFY, ${seconds} s each x 2`,
  );
  return withDatabase(async (url) => {
    const pool = new pg.Pool({ connectionString: url, max: CONCURRENCY });
    try {
      await pool.query(
        'CREATE TABLE bench_notify (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v int)',
      );
      const modes = {
        plain: ['INSERT INTO bench_notify (v) VALUES ($1)'],
        'notify-in-commit': [
          `WITH i AS (INSERT INTO bench_notify (v) VALUES ($1) RETURNING id)
           SELECT pg_notify('bench_notify', 'done:' || id) FROM i`,
        ],
        'notify-after-async': [
          'INSERT INTO bench_notify (v) VALUES ($1)',
          `SELECT set_config('synchronous_commit', 'off', true), pg_notify('bench_notify', 'done:' || $1::text)`,
        ],
      };
      // Every connection opened, and the table's first pages written, before anything is timed.
      await Promise.all(Array.from({ length: CONCURRENCY }, (_, i) => pool.query(modes.plain[0], [i])));
      const results = new Map();
      for (let pass = 0; pass < 2; pass++) {
        for (const [mode, statements] of Object.entries(modes)) {
          const before = sampleServerCpu(postmaster);
          const t0 = performance.now();
          const until = t0 + seconds * 1000;
          let ops = 0;
          await Promise.all(
            Array.from({ length: CONCURRENCY }, async () => {
              while (performance.now() < until) {
                for (const sql of statements) await pool.query(sql, [ops]);
                ops++;
              }
            }),
          );
          const wall = (performance.now() - t0) / 1000;
          const r = results.get(mode) ?? { ops: 0, wall: 0, serverMs: 0, byRound: [] };
          r.ops += ops;
          r.wall += wall;
          r.serverMs += serverCpuMsBetween(before, sampleServerCpu(postmaster));
          r.byRound.push(round(ops / wall, 0));
          results.set(mode, r);
        }
      }
      const plain = results.get('plain');
      return [...results].map(([mode, r]) => ({
        workload: 'notify-commit',
        system: 'postgres',
        mode,
        concurrency: CONCURRENCY,
        ops: r.ops,
        ops_per_s: round(r.ops / r.wall, 0),
        ops_per_s_by_round: r.byRound,
        ratio_to_plain: round(r.ops / r.wall / (plain.ops / plain.wall), 2),
        server_cpu_ms_per_op: round(r.serverMs / r.ops, 3),
      }));
    } finally {
      await pool.end();
    }
  });
}

// ---------------------------------------------------------------------------------------------
// results

/**
 * The server's version and settings (refusing a server whose fsync is not what was asked), its
 * postmaster's pid, and the time of one single-row commit on it (the floor every synchronous write pays).
 */
async function serverInfo(url, kind) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const version = (await client.query(`SELECT current_setting('server_version') AS v`)).rows[0].v;
    const names = [
      'fsync',
      'synchronous_commit',
      'wal_sync_method',
      'full_page_writes',
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
    if (settings.fsync !== FSYNC || settings.synchronous_commit !== 'on') {
      throw new Error(
        `--fsync=${FSYNC} needs a server with fsync=${FSYNC} and synchronous_commit=on; this one (${kind}) has ` +
          `fsync=${settings.fsync}, synchronous_commit=${settings.synchronous_commit}`,
      );
    }
    const backend = (await client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    // A temporary table's commits skip the WAL flush: a regular one, dropped at once.
    await client.query('CREATE TABLE IF NOT EXISTS public.bench_commit_probe (v int)');
    const n = 200;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await client.query('INSERT INTO public.bench_commit_probe VALUES ($1)', [i]);
    const commitMs = round((performance.now() - t0) / n, 3);
    await client.query('DROP TABLE public.bench_commit_probe');
    return { kind, version, settings, postmaster: postmasterOf(backend), commit_ms: commitMs };
  } finally {
    await client.end();
  }
}

function dbosVersion() {
  try {
    const file = path.join(root, 'node_modules', '@dbos-inc', 'dbos-sdk', 'package.json');
    return JSON.parse(fs.readFileSync(file, 'utf8')).version;
  } catch {
    return undefined;
  }
}

const keyOf = (r) => `${r.workload}|${r.steps}|${r.concurrency}`;
const PAIRED = ['latency', 'throughput', 'transactional', 'client-latency'];
/** Latency rows compare times (lower is better); the others runs per second. */
const isLatency = (r) => r.workload === 'latency' || r.workload === 'client-latency';

function addRatios(records) {
  const bySystem = (system) => new Map(records.filter((r) => r.system === system).map((r) => [keyOf(r), r]));
  const raw = bySystem('raw-pg');
  const dbos = bySystem('dbos');
  const ratio = (r, base) =>
    isLatency(r) ? round(r.ms_per_run / base.ms_per_run, 2) : round(r.runs_per_s / base.runs_per_s, 2);
  for (const r of records) {
    if (!PAIRED.includes(r.workload)) continue;
    if (r.system === 'raw-pg') r.ratio_to_raw = 1;
    const base = r.system === 'raw-pg' ? undefined : raw.get(keyOf(r));
    if (base) {
      r.ratio_to_raw = ratio(r, base);
      // The same ratio per alternating round (latency: of the mean times), to show the noise.
      const mine = r.runs_per_s_by_round;
      const theirs = base.runs_per_s_by_round;
      if (mine && theirs && mine.length === theirs.length) {
        r.ratio_by_round = mine.map((x, i) => round(isLatency(r) ? theirs[i] / x : x / theirs[i], 2));
      }
    }
    const other = r.system === 'dbos' ? undefined : dbos.get(keyOf(r));
    if (other) r.ratio_to_dbos = ratio(r, other);
  }
}

/** The targets, each on one line: fsync on, ratios of the same run. */
function checkTargets(records) {
  const find = (system, workload, steps, concurrency) =>
    records.find(
      (r) =>
        r.system === system && r.workload === workload && r.steps === steps && r.concurrency === concurrency,
    );
  const out = [];
  const add = (target, measured, ok, unit = '', system = 'durable') =>
    out.push({ target, system, measured: measured ?? null, unit, met: measured == null ? null : ok });
  const t3 = find('durable', 'throughput', 3, CONCURRENCY);
  add(`throughput K=3 c=${CONCURRENCY} >= 0.85 x raw`, t3?.ratio_to_raw, t3?.ratio_to_raw >= 0.85, 'x raw');
  const l = find('durable', 'latency', 3, 1);
  add('sequential latency K=3 <= 1.15 x raw', l?.ratio_to_raw, l?.ratio_to_raw <= 1.15, 'x raw');
  const t10 = find('durable', 'throughput', 10, CONCURRENCY);
  add(`throughput K=10 c=${CONCURRENCY} >= 0.8 x raw`, t10?.ratio_to_raw, t10?.ratio_to_raw >= 0.8, 'x raw');
  const tx = find('durable', 'transactional', 3, CONCURRENCY);
  add(`transactional K=3 c=${CONCURRENCY} >= 0.8 x raw`, tx?.ratio_to_raw, tx?.ratio_to_raw >= 0.8, 'x raw');
  const a3 = find('durable-async', 'throughput', 3, CONCURRENCY);
  const aSystem = 'durable-async';
  add(
    `asyncCheckpoints: throughput K=3 c=${CONCURRENCY} >= 1.0 x raw`,
    a3?.ratio_to_raw,
    a3?.ratio_to_raw >= 1,
    'x raw',
    aSystem,
  );
  const al = find('durable-async', 'latency', 3, 1);
  add(
    'asyncCheckpoints: sequential latency K=3 <= 1.0 x raw',
    al?.ratio_to_raw,
    al?.ratio_to_raw <= 1,
    'x raw',
    aSystem,
  );
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

/** The readable tables of a run. */
function tablesOf(env, records, targets) {
  const lines = [];
  const settings = Object.entries(env.settings)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
  lines.push(
    `PostgreSQL ${env.version} (${env.kind}; ${settings}); one single-row commit: ${env.commit_ms} ms`,
  );
  lines.push(
    `Same server and settings for all systems, a database each; pool ${POOL} each (durable also holds its LISTEN`,
  );
  lines.push(
    `connection, beside the pool); concurrency ${CONCURRENCY}; node ${env.node}, ${env.cpus} CPUs; DBOS Transact ${env.dbos ?? '?'}.`,
  );
  lines.push(
    `Load average (1 min) of the machine: ${env.load_start} at the start, ${env.load_end} at the end.`,
  );
  if (env.quick) lines.push('--quick: small sizes, a smoke check only: the numbers are not meaningful.');
  lines.push('');

  const systems = CHOSEN.filter((s) => s !== 'durable-telemetry-off');
  const get = (system, key) => records.find((x) => x.system === system && keyOf(x) === key);
  const keys = [...new Set(records.filter((r) => PAIRED.includes(r.workload)).map(keyOf))];
  const value = (r) => (r ? (isLatency(r) ? `${r.ms_per_run} ms` : `${r.runs_per_s}`) : '-');
  const withRatio = (r) => (r ? `${value(r)} (${r.ratio_to_raw ?? r.ratio_to_dbos ?? '-'})` : '-');
  const target = (r) =>
    r.workload === 'latency'
      ? '<= 1.15x'
      : r.workload === 'transactional' && r.concurrency === CONCURRENCY
        ? '>= 0.8'
        : r.workload === 'throughput' && r.concurrency === CONCURRENCY
          ? r.steps === 3
            ? '>= 0.85'
            : '>= 0.8'
          : '';
  const first = (key) => systems.map((s) => get(s, key)).find(Boolean);
  if (keys.length > 0) {
    lines.push(
      table(
        [
          'workload',
          'K',
          'C',
          'runs (raw)',
          ...systems.map((s) => `${s}${s === 'raw-pg' ? '' : ' (ratio)'}`),
          'durable ratio by round',
          `p99 ms ${systems.join('|')}`,
          'stmts/run d|raw',
          `client CPU ms/run ${systems.join('|')}`,
          `server CPU ms/run ${systems.join('|')}`,
          'target',
        ],
        keys.map((key) => {
          const r = first(key);
          const d = get('durable', key);
          const w = get('raw-pg', key);
          return [
            r.workload === 'latency'
              ? 'latency (median)'
              : r.workload === 'client-latency'
                ? 'client start->result (mean)'
                : r.workload,
            r.steps,
            r.concurrency,
            get('raw-pg', key)?.runs ?? r.runs,
            ...systems.map((s) => (s === 'raw-pg' ? value(get(s, key)) : withRatio(get(s, key)))),
            d?.ratio_by_round?.join(' ') ?? '-',
            systems.map((s) => get(s, key)?.p99_ms ?? '-').join(' | '),
            `${d?.statements_per_run ?? '-'} | ${w?.statements_per_run ?? '-'}`,
            systems.map((s) => get(s, key)?.client_cpu_ms_per_run ?? '-').join(' | '),
            systems.map((s) => get(s, key)?.server_cpu_ms_per_run ?? '-').join(' | '),
            target(r),
          ];
        }),
      ),
    );
    lines.push(
      '  ratio: to raw-pg (runs/s over raw runs/s; latency: median time over raw median time); client start->result:',
    );
    lines.push('  mean time, ratio to dbos. ms/run under load is the mean time of one run.');
    lines.push(
      '  raw-pg: plain parameterized queries, one autocommit statement per write, as hand-written code sends them (the targets are',
    );
    lines.push(
      '  against it). durable-async: the library with asyncCheckpoints on. dbos: DBOS Transact, steps via DBOS.runStep.',
    );
    lines.push(
      `  ratio by round: the runs are measured in ${ROUNDS} rounds alternating between the systems (all processes up, the idle ones`,
    );
    lines.push(
      '  waiting, each warming its pool before its round); their spread shows the noise of the machine.',
    );
    lines.push('  client CPU: CPU time of the bench process while it measured, per run.');
    lines.push(
      "  server CPU: CPU time of the bench server's processes while that system measured, per run (Linux /proc).",
    );
    lines.push('');
  }

  const traced = records.filter((r) => r.workload === 'tracing' && r.system === 'durable');
  if (traced.length) {
    lines.push(
      'Cost of telemetry (K=3 throughput, client.start + result; rounds alternating between the two)',
    );
    lines.push(
      table(
        ['C', 'telemetry on runs/s', 'off runs/s', 'cost', 'cost by round', 'on ms/run', 'off ms/run'],
        traced.map((on) => {
          const off = get('durable-telemetry-off', keyOf(on));
          const cost = (a, b) => `${round((1 - a / b) * 100, 1)}%`;
          const byRound = on.runs_per_s_by_round?.map((x, i) => cost(x, off?.runs_per_s_by_round?.[i]));
          return [
            on.concurrency,
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

  const client = records.filter((r) => r.workload === 'client-latency');
  if (client.length) {
    lines.push(
      `Client-only process: start -> result() (${CLIENT_CONCURRENCY} starts in flight, each timed; the worker is another process)`,
    );
    lines.push(
      table(
        ['system', 'runs', 'p50 ms', 'p99 ms', 'mean ms', 'ratio of means to dbos'],
        client.map((r) => [r.system, r.runs, r.p50_ms, r.p99_ms, r.mean_ms, r.ratio_to_dbos ?? '-']),
      ),
    );
    lines.push('  durable: DurableClient.start in a worker: false process, handle.result() wakes on NOTIFY;');
    lines.push(
      '  dbos: DBOSClient.enqueue on a queue, handle.getResult() polls (defaults: queue and result polling 1 s).',
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

  const scaleRows = records.filter((r) => r.workload === 'scale');
  if (scaleRows.length) {
    lines.push(
      `Scale-out: ${scaleRows[0].runs} runs (K=3) started in one transaction, executed by N worker processes (concurrency ${CONCURRENCY}, pool ${POOL} each)`,
    );
    lines.push(
      table(
        ['workers', 'runs/s', 'ratio to 1', 'seconds', 'server CPU ms/run'],
        scaleRows.map((r) => [
          r.workers,
          r.runs_per_s,
          r.ratio_to_one ?? '-',
          r.seconds,
          r.server_cpu_ms_per_run ?? '-',
        ]),
      ),
    );
    lines.push('');
  }

  const claims = records.filter((r) => r.workload === 'claim-cost');
  if (claims.length) {
    lines.push(
      `Claim cost: claims of up to ${CONCURRENCY} runs each, from a backlog of pending runs (after VACUUM ANALYZE)`,
    );
    lines.push(
      table(
        [
          'pending',
          'claims',
          'p50 ms',
          'p99 ms',
          'ms per claimed run',
          'runs index scans/claim',
          'runs rows fetched/claim',
        ],
        claims.map((r) => [
          r.backlog,
          r.runs,
          r.p50_ms,
          r.p99_ms,
          r.ms_per_claimed_run,
          r.idx_scans_per_claim,
          r.rows_fetched_per_claim,
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
    lines.push(
      `  Each tenth of the runs had ended at ${rec.progress_s?.join(', ')} s; autovacuum/analyze passes meanwhile: ${rec.autovacuums_during}.`,
    );
    const sv = rec.server ?? {};
    lines.push(
      `  ${rec.claims} claims (${rec.runs_per_claim} runs each); client CPU ${rec.client_cpu_ms_per_run} ms/run (${rec.client_cpu_pct}%), server CPU ${rec.server_cpu_ms_per_run} ms/run;`,
    );
    lines.push(
      `  server meanwhile: ${sv.commits} commits, ${sv.wal_fsyncs ?? '?'} WAL fsyncs, ${round((sv.wal_bytes ?? NaN) / 1e6, 1)} MB WAL (${sv.wal_fpi} full-page images), ${sv.checkpoints} checkpoints`,
    );
    lines.push(
      `  (the last one began ${rec.since_checkpoint_s} s before the restart); load average ${rec.load_before} -> ${rec.load_after}, some task`,
    );
    lines.push(
      `  waiting for a CPU ${rec.cpu_pressure_pct ?? '?'}% and for I/O ${rec.io_pressure_pct ?? '?'}% of the time (PSI).`,
    );
    if (recRaw) {
      lines.push(
        `  raw-pg, the same work by hand (claim 1, read steps, 2 INSERTs, finish; ${recRaw.concurrency} workers): ${recRaw.seconds} s,`,
      );
      const sr = recRaw.server ?? {};
      lines.push(
        `  ${recRaw.runs_per_s} runs/s; client CPU ${recRaw.client_cpu_ms_per_run} ms/run, server CPU ${recRaw.server_cpu_ms_per_run} ms/run; ${sr.commits} commits,`,
      );
      lines.push(
        `  ${sr.wal_fsyncs ?? '?'} WAL fsyncs, ${round((sr.wal_bytes ?? NaN) / 1e6, 1)} MB WAL (${sr.wal_fpi} full-page images), ${sr.checkpoints} checkpoints; load average`,
      );
      lines.push(
        `  ${recRaw.load_before} -> ${recRaw.load_after}, CPU pressure ${recRaw.cpu_pressure_pct ?? '?'}%, I/O pressure ${recRaw.io_pressure_pct ?? '?'}%.`,
      );
    }
    lines.push('');
  }
  const notify = records.filter((r) => r.workload === 'notify-commit');
  if (notify.length) {
    lines.push(
      `Commits with NOTIFY (no library): ${CONCURRENCY} connections committing one-row INSERTs for a fixed time`,
    );
    lines.push(
      table(
        ['mode', 'ops/s', 'by round', 'ratio to plain', 'server CPU ms/op'],
        notify.map((r) => [
          r.mode,
          r.ops_per_s,
          r.ops_per_s_by_round.join(' '),
          r.ratio_to_plain,
          r.server_cpu_ms_per_op,
        ]),
      ),
    );
    lines.push(
      "  notify-in-commit: pg_notify in the INSERT's statement (as the library's finish sends 'done'); notify-after-async:",
    );
    lines.push(
      '  the INSERT, then pg_notify in its own transaction with synchronous_commit off (2 statements per op).',
    );
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

  lines.push('Targets (fsync on)');
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
  return lines.join('\n');
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
