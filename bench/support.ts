/**
 * Shared by the bench child processes (bench/durable.ts, bench/raw.ts): the configuration the launcher
 * passes in BENCH_CONFIG, the statement counter, concurrency runner, statistics and JSON-line output.
 */
import fs from 'node:fs';
import { Session } from 'node:inspector';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import pg from 'pg';

/** The systems measured side by side (scripts/bench.mjs names them the same way). */
export type SystemName =
  'durable' | 'durable-async' | 'durable-telemetry-off' | 'raw-pg' | 'raw-pg-prepared' | 'dbos';

export interface BenchConfig {
  /** latency | throughput | transactional | statements | recovery-crash | recovery-resume | sleeping */
  workload: string;
  steps: number;
  concurrency: number;
  runs: number;
  warmup: number;
  poolSize: number;
  /** sleeping: seconds every run sleeps (all wake at the same instant). */
  sleepSeconds?: number;
  /**
   * Rounds: the measured runs are split into this many rounds, each started by a `go` line on stdin, so
   * the launcher can alternate the two systems' rounds (both processes stay up, idle in between).
   */
  rounds?: number;
  /** Rounds of this fixed duration (runs started until it has passed) instead of `runs` split in rounds. */
  roundMs?: number;
  /** DurableModule pollIntervalMs (default: the library's 1000). */
  pollIntervalMs?: number;
  /** DurableModule concurrency (default: max(32, concurrency)). */
  durableConcurrency?: number;
  /** recovery: the stable executor id of the crashed and restarted process. */
  executorId?: string;
  /** suite: the latency/throughput/transactional configurations measured one after the other. */
  configs?: Partial<BenchConfig>[];
  /** scale: the number of worker processes. */
  workers?: number;
  /** claim-cost: the sizes of the pending backlog to claim from. */
  backlogs?: number[];
}

export function readConfig(): { url: string; config: BenchConfig } {
  const url = process.env.DATABASE_URL;
  const raw = process.env.BENCH_CONFIG;
  if (!url || !raw)
    throw new Error('bench child: DATABASE_URL and BENCH_CONFIG must be set (run `npm run bench`)');
  return { url, config: JSON.parse(raw) as BenchConfig };
}

/** One JSON object per line on stdout: the launcher collects these. */
export function emit(record: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(record)}\n`);
}

/**
 * Counts every statement sent by any pg Client of this process (pool.query, TypeORM's query runners and
 * the LISTEN connection all end in Client.prototype.query), by a short label of its SQL text.
 * Installed before the app loads pg-using code; delegates to the real method.
 */
/** BENCH_TRACE=<label substring>: print where the first statements with that label come from. */
const TRACE = process.env.BENCH_TRACE;
let traced = 0;
/** Statement texts are constants: label each once. */
const labels = new Map<string, string>();

export class StatementCounter {
  counting = false;
  total = 0;
  readonly byLabel = new Map<string, number>();

  install(): this {
    const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
    const real = proto.query;
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const counter = this;
    proto.query = function (this: unknown, ...args: unknown[]) {
      if (counter.counting) {
        const first = args[0];
        const text =
          typeof first === 'string' ? first : ((first as { text?: string } | undefined)?.text ?? '?');
        counter.total++;
        let label = labels.get(text);
        if (label === undefined) labels.set(text, (label = labelOf(text)));
        counter.byLabel.set(label, (counter.byLabel.get(label) ?? 0) + 1);
        if (TRACE && label.includes(TRACE) && traced++ < 3) {
          process.stderr.write(
            `[trace] ${label}: ${text.replace(/\s+/g, ' ').slice(0, 120)}\n${new Error().stack}\n`,
          );
        }
      }
      return real.apply(this, args);
    };
    return this;
  }

  reset(): void {
    this.total = 0;
    this.byLabel.clear();
  }

  start(): void {
    this.reset();
    this.counting = true;
  }

  pause(): void {
    this.counting = false;
  }

  resume(): void {
    this.counting = true;
  }

  stop(): { total: number; byLabel: Record<string, number> } {
    this.counting = false;
    return { total: this.total, byLabel: Object.fromEntries([...this.byLabel].sort((a, b) => b[1] - a[1])) };
  }
}

/** A short, stable name for a statement: its verb and target table (or CTE head). */
export function labelOf(sql: string): string {
  const s = sql.replace(/\s+/g, ' ').trim();
  const table = (re: RegExp) => s.match(re)?.[1]?.replace(/"/g, '') ?? '?';
  if (/^(BEGIN|START TRANSACTION)/i.test(s)) return 'BEGIN';
  // The NOTIFY of finished runs, sent after their finishes committed, one statement per batch.
  if (/^SELECT set_config\('synchronous_commit', 'off', true\),.*pg_notify/i.test(s))
    return 'NOTIFY done (after commit)';
  if (/^COMMIT/i.test(s)) return 'COMMIT';
  if (/^ROLLBACK/i.test(s)) return 'ROLLBACK';
  if (/^WITH inserted AS \( INSERT INTO/i.test(s))
    return `INSERT ${table(/INSERT INTO (\S+)/i)} (pending+notify)`;
  if (/^WITH finished AS/i.test(s)) return `UPDATE ${table(/UPDATE (\S+)/i)} (finish)`;
  // The claim (WITH due AS (... FOR UPDATE SKIP LOCKED) UPDATE runs ... epoch + 1) and the first
  // checkpoint of an execution that recovered a run (WITH owner AS (UPDATE runs SET stalls = 0) INSERT).
  if (/^WITH /i.test(s) && /epoch = r\.epoch \+ 1/i.test(s))
    return `UPDATE ${table(/\) UPDATE (\S+)/i)} (claim)`;
  if (/^WITH owner AS \(UPDATE \S+ SET stalls = 0/i.test(s))
    return `INSERT ${table(/INSERT INTO (\S+)/i)} (+stalls reset)`;
  if (/^WITH /i.test(s)) return `WITH ... ${table(/(?:UPDATE|INSERT INTO|DELETE FROM) (\S+)/i)}`;
  if (/^INSERT INTO (\S+)/i.test(s)) return `INSERT ${table(/^INSERT INTO (\S+)/i)}`;
  if (/^UPDATE (\S+)/i.test(s)) {
    const t = table(/^UPDATE (\S+)/i);
    if (/epoch = r\.epoch \+ 1/i.test(s)) return `UPDATE ${t} (claim)`;
    if (/SET status = \$4, executor = NULL/i.test(s)) return `UPDATE ${t} (park)`;
    if (/SET status = 'pending'/i.test(s)) return `UPDATE ${t} (release)`;
    return `UPDATE ${t}`;
  }
  if (/^SELECT/i.test(s)) return `SELECT ${table(/FROM (\S+)/i)}`;
  return s.slice(0, 30);
}

/**
 * Runs `total` tasks with `concurrency` workers (with `untilMs`, a performance.now() instant, no task
 * starts after it: a round of fixed duration); returns per-task latencies (ms), the count and the wall time.
 */
export async function runConcurrently(
  total: number,
  concurrency: number,
  task: (i: number) => Promise<unknown>,
  untilMs = Infinity,
): Promise<{ latencies: number[]; count: number; wallMs: number; elu: number }> {
  const latencies: number[] = [];
  let next = 0;
  const elu = performance.eventLoopUtilization();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, total) }, async () => {
      for (;;) {
        const i = next++;
        if (i >= total || performance.now() >= untilMs) return;
        const t = performance.now();
        await task(i);
        latencies.push(performance.now() - t);
      }
    }),
  );
  return {
    latencies,
    count: latencies.length,
    wallMs: performance.now() - started,
    elu: performance.eventLoopUtilization(elu).utilization,
  };
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index];
}

export function mean(values: number[]): number {
  return values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);
}

export const round = (x: number, digits = 3) => (Number.isFinite(x) ? Number(x.toFixed(digits)) : x);

/** CPU time of this process (user+system, ms) since `since`, for "is the client the bottleneck". */
export function cpuMs(since?: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1000;
}

export function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) {
    g();
    g();
  }
}

/**
 * Counters of the server over a measured phase (one database cluster, so the other databases' activity
 * is in them too; the bench runs one measuring process at a time): WAL volume and full-page images
 * (pg_stat_wal), WAL fsyncs (pg_stat_io, PostgreSQL 16+), checkpoints (pg_stat_checkpointer, 17+, else
 * pg_stat_bgwriter), and this database's commits.
 */
export async function serverCounters(client: pg.Client): Promise<Record<string, number>> {
  const one = async (sql: string): Promise<Record<string, number>> => {
    try {
      const { rows } = await client.query(sql);
      return Object.fromEntries(Object.entries(rows[0] ?? {}).map(([k, v]) => [k, Number(v)]));
    } catch {
      return {};
    }
  };
  await one('SELECT pg_stat_force_next_flush()');
  return {
    ...(await one('SELECT wal_records, wal_fpi, wal_bytes FROM pg_stat_wal')),
    ...(await one(`SELECT sum(fsyncs) AS wal_fsyncs FROM pg_stat_io WHERE object = 'wal'`)),
    ...(await one('SELECT num_timed + num_requested AS checkpoints FROM pg_stat_checkpointer')),
    ...(await one('SELECT xact_commit AS commits FROM pg_stat_database WHERE datname = current_database()')),
  };
}

/** Seconds since the server's last checkpoint began (a timed one follows checkpoint_timeout later). */
export async function sinceCheckpointS(client: pg.Client): Promise<number | undefined> {
  try {
    const { rows } = await client.query(
      `SELECT round(extract(epoch FROM now() - (pg_control_checkpoint()).checkpoint_time), 1) AS s`,
    );
    return Number(rows[0].s);
  } catch {
    return undefined;
  }
}

/** `after - before` of each counter present in both. */
export function counterDelta(
  before: Record<string, number>,
  after: Record<string, number>,
): Record<string, number> {
  return Object.fromEntries(
    Object.keys(after)
      .filter((k) => Number.isFinite(before[k]) && Number.isFinite(after[k]))
      .map((k) => [k, after[k] - before[k]]),
  );
}

/** The 1-minute load average of the machine (Linux /proc/loadavg; os.loadavg() elsewhere). */
export function loadAverage(): number {
  try {
    return Number(fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
  } catch {
    return round(os.loadavg()[0], 2);
  }
}

/**
 * Pressure stall totals of the machine (Linux PSI, /proc/pressure/{cpu,io}: microseconds during which
 * some task waited for a CPU, or for I/O), and the time they were read; {} where PSI is absent.
 */
export function pressure(): { at?: number; cpu_us?: number; io_us?: number } {
  const some = (what: string) => {
    try {
      const line = fs.readFileSync(`/proc/pressure/${what}`, 'utf8').split('\n')[0];
      return Number(line.match(/total=(\d+)/)?.[1]);
    } catch {
      return undefined;
    }
  };
  return { at: performance.now(), cpu_us: some('cpu'), io_us: some('io') };
}

/** Share of the time between two pressure() readings during which some task waited for a CPU / for I/O (%). */
export function pressureBetween(
  before: ReturnType<typeof pressure>,
  after: ReturnType<typeof pressure>,
): { cpu_pressure_pct?: number; io_pressure_pct?: number } {
  const ms = (after.at ?? 0) - (before.at ?? 0);
  const pct = (a?: number, b?: number) =>
    a !== undefined && b !== undefined && ms > 0 ? round(((b - a) / 1000 / ms) * 100, 0) : undefined;
  return {
    cpu_pressure_pct: pct(before.cpu_us, after.cpu_us),
    io_pressure_pct: pct(before.io_us, after.io_us),
  };
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The fields every throughput/latency line carries. */
export function throughputRecord(
  system: SystemName,
  config: BenchConfig,
  runs: number,
  result: { latencies: number[]; wallMs: number; elu: number },
  cpu: number,
  statements?: { total: number; byLabel: Record<string, number> },
): Record<string, unknown> {
  const record: Record<string, unknown> = {
    workload: config.workload,
    system,
    steps: config.steps,
    concurrency: config.concurrency,
    runs,
    runs_per_s: round((runs / result.wallMs) * 1000, 1),
    // Latency: the median of the sequential runs; throughput: the mean time of one run under load.
    ms_per_run: round(
      config.workload === 'latency' ? percentile(result.latencies, 50) : mean(result.latencies),
    ),
    mean_ms: round(mean(result.latencies)),
    p50_ms: round(percentile(result.latencies, 50)),
    p99_ms: round(percentile(result.latencies, 99)),
    wall_s: round(result.wallMs / 1000),
    pool: config.poolSize,
    client_cpu_pct: round((cpu / result.wallMs) * 100, 0),
    client_cpu_ms_per_run: round(cpu / runs),
    // Event-loop utilization of the bench process: near 1 means the Node process is the bottleneck.
    event_loop_util: round(result.elu, 2),
  };
  if (statements) {
    record.statements_per_run = round(statements.total / runs, 2);
    record.statements = statements.byLabel;
  }
  return record;
}

/**
 * BENCH_PROFILE=<path prefix>: a V8 CPU profile of each measured phase only (not boot or warm-up), written
 * as <prefix>-<label>.cpuprofile (open it in Chrome DevTools, or summarize it with `node bench/cpuprofile.mjs <file>`).
 */
let session: Session | undefined;

let profileLabel: string | undefined;

/** Starts profiling (if asked); the profile is written by stopProfile, named by `label` when given. */
export async function startProfile(label?: string): Promise<void> {
  if (!process.env.BENCH_PROFILE || session) return;
  profileLabel = label;
  session = new Session();
  session.connect();
  const post = (method: string, params?: object) =>
    new Promise<void>((resolve, reject) =>
      session!.post(method, params ?? {}, (err) => (err ? reject(err) : resolve())),
    );
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: 250 });
  await post('Profiler.start');
}

export async function stopProfile(): Promise<void> {
  const prefix = process.env.BENCH_PROFILE;
  if (!prefix || !session) return;
  const file = `${prefix}${profileLabel ? `-${profileLabel}` : ''}.cpuprofile`;
  const s = session;
  session = undefined;
  const profile = await new Promise<object>((resolve, reject) =>
    s.post('Profiler.stop', (err, result) => (err ? reject(err) : resolve(result.profile))),
  );
  fs.writeFileSync(file, JSON.stringify(profile));
  s.disconnect();
}

let commands: string[] | undefined;
let commandWaiter: (() => void) | undefined;

/** The next line on stdin (the launcher's `go`). */
async function nextCommand(): Promise<string> {
  if (!commands) {
    commands = [];
    createInterface({ input: process.stdin }).on('line', (line) => {
      commands!.push(line.trim());
      commandWaiter?.();
    });
  }
  while (commands.length === 0) await new Promise<void>((resolve) => (commandWaiter = resolve));
  return commands.shift()!;
}

/** A short name of a side-by-side configuration: latency-k3-c1, throughput-k10-c32, ... */
export function configLabel(config: BenchConfig): string {
  return `${config.workload}-k${config.steps}-c${config.concurrency}`;
}

/**
 * The side-by-side configurations a child measures one after the other (BENCH_CONFIG's `configs`, one
 * process for all of them), or the config itself. Each inherits the suite's pool size and rounds.
 */
export function suiteOf(config: BenchConfig): BenchConfig[] {
  return config.configs?.map((c) => ({ ...config, configs: undefined, ...c })) ?? [config];
}

/**
 * Before each measured round (not timed): a few runs at the round's concurrency and, given the pool,
 * every one of its connections opened at once, so no round pays for connections closed while idle.
 */
export async function warmRound(
  concurrency: number,
  task: (i: number) => Promise<unknown>,
  pool?: pg.Pool,
  poolSize = 0,
): Promise<void> {
  if (pool && poolSize > 0) {
    const clients = await Promise.all(Array.from({ length: poolSize }, () => pool.connect()));
    for (const client of clients) client.release();
  }
  await runConcurrently(Math.max(concurrency, 10), concurrency, (i) => task(-1 - i));
}

/**
 * The measured phase of a latency/throughput workload: `config.runs` runs of `task` at `concurrency`,
 * in `config.rounds` rounds (each waits for `go` on stdin when there is more than one), counting
 * statements, CPU and event-loop use during the rounds only. Returns the JSON record.
 */
export async function measure(
  system: SystemName,
  config: BenchConfig,
  concurrency: number,
  task: (i: number) => Promise<unknown>,
  counter: StatementCounter,
  warm: () => Promise<void>,
): Promise<Record<string, unknown>> {
  const rounds = Math.max(
    1,
    config.roundMs ? (config.rounds ?? 1) : Math.min(config.rounds ?? 1, config.runs),
  );
  const latencies: number[] = [];
  const perRound: number[] = [];
  let wallMs = 0;
  let cpu = 0;
  let busyMs = 0;
  let done = 0;
  counter.start();
  counter.pause();
  for (let r = 0; r < rounds; r++) {
    // A round is a fixed duration (roundMs) or a share of `runs`.
    const size = config.roundMs
      ? Infinity
      : Math.floor(config.runs / rounds) + (r < config.runs % rounds ? 1 : 0);
    if (rounds > 1) {
      emit({ event: 'round-ready', round: r });
      const command = await nextCommand();
      if (command !== 'go') throw new Error(`expected "go" on stdin, got ${JSON.stringify(command)}`);
    }
    // The other systems measured meanwhile: an idle pool has closed connections (pg's idle timeout is
    // 10 s), which the first runs of the round would pay for.
    await warm();
    // The launcher samples the server's CPU from here to round-done: the measured runs only.
    if (rounds > 1) emit({ event: 'round-warm', round: r });
    await startProfile(configLabel(config));
    counter.resume();
    const since = process.cpuUsage();
    const offset = done;
    const until = config.roundMs ? performance.now() + config.roundMs : Infinity;
    const result = await runConcurrently(size, concurrency, (i) => task(offset + i), until);
    cpu += cpuMs(since);
    counter.pause();
    done += result.count;
    wallMs += result.wallMs;
    busyMs += result.elu * result.wallMs;
    latencies.push(...result.latencies);
    perRound.push(round((result.count / result.wallMs) * 1000, 1));
    if (rounds > 1) emit({ event: 'round-done', round: r });
  }
  await stopProfile();
  const record = throughputRecord(
    system,
    config,
    done,
    { latencies, wallMs, elu: busyMs / wallMs },
    cpu,
    counter.stop(),
  );
  record.rounds = rounds;
  record.runs_per_s_by_round = perRound;
  return record;
}
