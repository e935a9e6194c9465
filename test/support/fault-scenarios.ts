/**
 * The database-fault scenarios, each run against real worker processes (test/fixtures/fault-worker.ts)
 * and a real PostgreSQL, sized by the caller: small in `npm test` (test/fault-*.spec.ts), large in
 * `npm run chaos` (scripts/chaos.mjs). Each returns what the database holds afterwards (see
 * fault-workload.ts) plus what the processes did; the caller asserts or prints.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sleep } from './helpers';
import { OwnedPostgres } from './owned-postgres';
import { PgProxy, rowsWritten } from './pg-proxy';
import { STATEMENTS } from './statement-patterns';
import {
  databaseNow,
  prepareDatabase,
  queryPatiently,
  startRuns,
  statusCounts,
  terminateBackends,
  workloadReport,
  WorkloadReport,
} from './fault-workload';
import { WorkerProcess, WorkerSet } from './workers';

const FIXTURE = path.join(__dirname, '..', 'fixtures', 'fault-worker.ts');

/** Worker settings of the scenarios: a short lease so that takeovers happen within the test. */
export const FAULT_TIMINGS = { LEASE_MS: 4_000, HEARTBEAT_MS: 1_000, POLL_MS: 500 };

export interface ScenarioResult extends WorkloadReport {
  /** Workers that exited while they should have been running (their names and exit status). */
  unexpectedExits: string[];
  /** The workers' output, for failure messages. */
  output: string;
}

/** Runs `fn` with a WorkerSet on `url` and an effects file; kills the workers and removes the file after. */
export async function withWorkers<T>(
  url: string,
  fn: (workers: WorkerSet, effectsFile: string) => Promise<T>,
): Promise<T> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'durable-effects-'));
  const effectsFile = path.join(dir, 'effects.log');
  const workers = new WorkerSet({
    fixture: FIXTURE,
    url: () => url,
    baseEnv: {
      ...FAULT_TIMINGS,
      EFFECTS_FILE: effectsFile,
      CONCURRENCY: '',
      STEP_DELAY_MS: '',
      BLOCK_AT: '',
      BLOCK_MS: '',
      CLOCK_SKEW_MS: '',
      MAX_RECOVERY_ATTEMPTS: '',
      POOL: '',
      MULTI_HOST: '',
    },
    bootMs: 90_000,
  });
  try {
    return await fn(workers, effectsFile);
  } finally {
    await workers.killAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Resolves when every run `<prefix>-*` has succeeded (or `ms` passed, or `giveUp` says so). */
export async function waitForRuns(
  url: string,
  count: number,
  ms: number,
  giveUp: () => boolean = () => false,
): Promise<Record<string, number>> {
  const deadline = Date.now() + ms;
  for (;;) {
    const counts = await statusCounts(url);
    if ((counts.succeeded ?? 0) >= count || Date.now() > deadline || giveUp()) return counts;
    await sleep(250);
  }
}

/** Names and exit status of workers that are no longer running. */
function exits(workers: WorkerProcess[]): string[] {
  return workers
    .filter((worker) => !worker.alive())
    .map((worker) => `${worker.name} (code ${worker.child.exitCode}, signal ${worker.child.signalCode})`);
}

export interface HiccupOptions {
  runs: number;
  /** How many times every backend of the database is terminated. */
  hiccups: number;
  intervalMs: number;
  stepDelayMs: number;
  /** How long to wait for every run to finish after the last hiccup. */
  finishMs: number;
}

/**
 * "dbhiccup": one worker executes `runs` chaosFlow runs while, `hiccups` times every `intervalMs`, every
 * backend of its database is terminated (pg_terminate_backend). The process must never exit.
 */
export async function dbHiccup(url: string, options: HiccupOptions): Promise<ScenarioResult> {
  await prepareDatabase(url);
  return withWorkers(url, async (workers, effectsFile) => {
    const worker = await workers.start('hiccup-1', { STEP_DELAY_MS: options.stepDelayMs, POOL: 20 });
    await startRuns(url, 'hiccup', options.runs);
    for (let i = 0; i < options.hiccups && worker.alive(); i++) {
      await sleep(options.intervalMs);
      await terminateBackends(url);
    }
    const since = await databaseNow(url);
    await waitForRuns(url, options.runs, options.finishMs, () => !worker.alive());
    return {
      ...(await workloadReport(url, 'hiccup', effectsFile, since)),
      unexpectedExits: exits([worker]),
      output: workers.outputs(60),
    };
  });
}

export interface RestartOptions {
  runs: number;
  stepDelayMs: number;
  /** The stops, in order, with how long the server stays down. */
  stops: { mode: 'fast' | 'immediate'; downMs: number }[];
  /** Pause between the previous event and each stop. */
  intervalMs: number;
  finishMs: number;
}

/** The server a test owns restarts under a running workload (the stops as given), then the runs finish. */
export async function serverRestarts(
  server: OwnedPostgres,
  options: RestartOptions,
): Promise<ScenarioResult> {
  const url = await server.createDatabase(`restart_${Date.now().toString(36)}`);
  await prepareDatabase(url);
  return withWorkers(url, async (workers, effectsFile) => {
    const worker = await workers.start('restart-1', { STEP_DELAY_MS: options.stepDelayMs, POOL: 20 });
    await startRuns(url, 'restart', options.runs);
    for (const stop of options.stops) {
      await sleep(options.intervalMs);
      await server.stop(stop.mode);
      await sleep(stop.downMs);
      await server.start();
    }
    const since = await databaseNow(url);
    await waitForRuns(url, options.runs, options.finishMs, () => !worker.alive());
    return {
      ...(await workloadReport(url, 'restart', effectsFile, since)),
      unexpectedExits: exits([worker]),
      output: workers.outputs(60),
    };
  });
}

export interface OutageOptions {
  runs: number;
  stepDelayMs: number;
  /** How long after the runs start the outage begins, and how long it lasts. */
  afterMs: number;
  outageMs: number;
  finishMs: number;
}

/**
 * The database is unreachable (every connection dropped, new ones refused, through a proxy) for longer
 * than the library's checkpoint retries, while the worker that owns the runs stays alive.
 */
export async function outage(databaseUrl: string, options: OutageOptions): Promise<ScenarioResult> {
  await prepareDatabase(databaseUrl);
  const target = new URL(databaseUrl);
  const proxy = await PgProxy.start({ host: target.hostname, port: Number(target.port || 5432) });
  try {
    return await withWorkers(proxy.urlFor(databaseUrl), async (workers, effectsFile) => {
      const worker = await workers.start('outage-1', { STEP_DELAY_MS: options.stepDelayMs, POOL: 20 });
      await startRuns(databaseUrl, 'outage', options.runs);
      await sleep(options.afterMs);
      await proxy.outage(options.outageMs);
      const since = await databaseNow(databaseUrl);
      await waitForRuns(databaseUrl, options.runs, options.finishMs, () => !worker.alive());
      return {
        ...(await workloadReport(databaseUrl, 'outage', effectsFile, since)),
        unexpectedExits: exits([worker]),
        output: workers.outputs(60),
      };
    });
  } finally {
    await proxy.close();
  }
}

export interface ReplicaChaosOptions {
  replicas: number;
  runs: number;
  stepDelayMs: number;
  /** How long replicas are killed and restarted, and the pause between two kills (random in the range). */
  chaosMs: number;
  killEveryMs: [number, number];
  /** Restart the server once, this far into the chaos (undefined: never), down for `serverDownMs`. */
  serverRestartAtMs?: number;
  serverDownMs: number;
  finishMs: number;
}

export interface ReplicaChaosResult extends ScenarioResult {
  kills: number;
}

/**
 * Replica chaos: `replicas` workers with stable executor ids share the runs; a random one is SIGKILLed
 * and restarted (same id) every `killEveryMs` for `chaosMs`, and the server restarts once in the middle.
 */
export async function replicaChaos(
  server: OwnedPostgres,
  options: ReplicaChaosOptions,
): Promise<ReplicaChaosResult> {
  const url = await server.createDatabase(`chaos_${Date.now().toString(36)}`);
  await prepareDatabase(url);
  return withWorkers(url, async (workers, effectsFile) => {
    // Many kills on purpose: bystander runs claimed again and again must not be taken for poison runs.
    const env = { STEP_DELAY_MS: options.stepDelayMs, POOL: 10, MAX_RECOVERY_ATTEMPTS: 100 };
    const names = Array.from({ length: options.replicas }, (_, i) => `replica-${i + 1}`);
    const current = new Map<string, WorkerProcess>();
    for (const worker of await Promise.all(names.map((name) => workers.start(name, env)))) {
      current.set(worker.name, worker);
    }
    await startRuns(url, 'chaos', options.runs);
    let kills = 0;
    const started = Date.now();
    let restarted = options.serverRestartAtMs === undefined;
    // As an orchestrator does: a replica that is gone (killed, or failed to boot while the server was
    // down) is started again with the same executor id, without waiting for it to be ready.
    const supervise = () => {
      for (const name of names) {
        if (!current.get(name)!.alive()) current.set(name, workers.spawn(name, env));
      }
    };
    while (Date.now() - started < options.chaosMs) {
      const [low, high] = options.killEveryMs;
      await sleep(low + Math.random() * (high - low));
      if (!restarted && Date.now() - started >= options.serverRestartAtMs!) {
        restarted = true;
        await server.stop('fast');
        await sleep(options.serverDownMs);
        await server.start();
      }
      await current.get(names[Math.floor(Math.random() * names.length)])!.kill('SIGKILL');
      kills++;
      supervise();
    }
    const since = await databaseNow(url);
    // Every replica up again before the end is measured.
    for (let round = 0; round < 5; round++) {
      supervise();
      await Promise.all(
        [...current.values()].map((w) => w.waitFor(/^READY /, 90_000).catch(() => undefined)),
      );
    }
    const alive = () => [...current.values()].some((worker) => worker.alive());
    await waitForRuns(url, options.runs, options.finishMs, () => !alive());
    return {
      ...(await workloadReport(url, 'chaos', effectsFile, since)),
      unexpectedExits: exits([...current.values()]),
      output: workers.outputs(40),
      kills,
    };
  });
}

export interface PoisonOptions {
  replicas: number;
  /** Healthy runs started beside the poison run. */
  others: number;
  maxRecoveryAttempts: number;
  /** How long to wait for the poison run to be set aside. */
  setAsideMs: number;
  finishMs: number;
}

export interface PoisonResult extends ScenarioResult {
  poison: { status: string; error: { name?: string; code?: string; message?: string } | null } | undefined;
  /** How many times the poison step ran (each time its process died), and replica deaths in all. */
  executions: number;
  deaths: number;
}

/**
 * A poison run (its step exits the process) among healthy ones; `replicas` workers with stable ids are
 * restarted after each death, as an orchestrator does. The poison run must be set aside.
 */
export async function poisonRun(url: string, options: PoisonOptions): Promise<PoisonResult> {
  await prepareDatabase(url);
  return withWorkers(url, async (workers, effectsFile) => {
    const env = { MAX_RECOVERY_ATTEMPTS: options.maxRecoveryAttempts, STEP_DELAY_MS: 50 };
    const names = Array.from({ length: options.replicas }, (_, i) => `poison-${i + 1}`);
    const current = new Map<string, WorkerProcess>();
    for (const worker of await Promise.all(names.map((name) => workers.start(name, env)))) {
      current.set(worker.name, worker);
    }
    let deaths = 0;
    let supervising = true;
    const supervisor = (async () => {
      while (supervising) {
        for (const name of names) {
          if (!current.get(name)!.alive()) {
            deaths++;
            current.set(name, workers.spawn(name, env));
          }
        }
        await sleep(200);
      }
    })();
    try {
      await startRuns(url, 'poison', 1, 'poisonFlow');
      await startRuns(url, 'healthy', options.others);
      const readPoison = async () => {
        const [row] = await queryPatiently<PoisonResult['poison'] & object>(
          url,
          `SELECT status, error FROM durable.runs WHERE id = 'poison-1'`,
        );
        return row;
      };
      const deadline = Date.now() + options.setAsideMs;
      let poison = await readPoison();
      while (poison?.status !== 'failed' && Date.now() < deadline) {
        await sleep(250);
        poison = await readPoison();
      }
      const since = await databaseNow(url);
      await waitForRuns(url, options.others, options.finishMs);
      const executions = workers
        .all()
        .flatMap((worker) => worker.lines())
        .filter((line) => line.startsWith('POISON poison-1 ')).length;
      return {
        ...(await workloadReport(url, 'healthy', effectsFile, since)),
        unexpectedExits: [],
        output: workers.outputs(30),
        poison,
        executions,
        deaths,
      };
    } finally {
      supervising = false;
      await supervisor;
    }
  });
}

export type LostReplyKind = keyof typeof STATEMENTS;

export interface LostRepliesOptions {
  runs: number;
  /** How many replies of that kind are lost. */
  cuts: number;
  finishMs: number;
}

export interface LostRepliesResult extends ScenarioResult {
  lostReplies: number;
}

/**
 * Replies lost on the way back from PostgreSQL (through a proxy) for `cuts` statements of one kind
 * while one worker executes `runs` runs: the writes happened, the worker does not know it.
 */
export async function lostReplies(
  databaseUrl: string,
  kind: LostReplyKind,
  options: LostRepliesOptions,
): Promise<LostRepliesResult> {
  await prepareDatabase(databaseUrl);
  const target = new URL(databaseUrl);
  const proxy = await PgProxy.start({ host: target.hostname, port: Number(target.port || 5432) });
  try {
    return await withWorkers(proxy.urlFor(databaseUrl), async (workers, effectsFile) => {
      const worker = await workers.start(`lost-${kind}`, { STEP_DELAY_MS: 20 });
      const cut = proxy.loseReply(STATEMENTS[kind], {
        times: options.cuts,
        ...(kind === 'commit'
          ? { when: (tags: string[]) => tags.includes('COMMIT') }
          : { when: rowsWritten, inTransaction: kind === 'checkpoint' ? false : undefined }),
      });
      const prefix = `lost-${kind}`;
      if (kind === 'start') {
        // Inline starts (the worker inserts the run already claimed): their INSERT is the statement.
        for (let i = 1; i <= options.runs; i++) worker.send(`START ${prefix}-${i} chaosFlow [${i}]`);
      } else {
        await startRuns(databaseUrl, prefix, options.runs);
      }
      const since = await databaseNow(databaseUrl);
      await waitForRuns(databaseUrl, options.runs, options.finishMs, () => !worker.alive());
      cut.disarm();
      return {
        ...(await workloadReport(databaseUrl, prefix, effectsFile, since)),
        unexpectedExits: exits([worker]),
        output: workers.outputs(40),
        lostReplies: cut.lost.length,
      };
    });
  } finally {
    await proxy.close();
  }
}
