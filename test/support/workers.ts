/**
 * Worker processes for crash tests: spawns a fixture (e.g. test/fixtures/scenario-worker.ts) with
 * spawnTs(), waits for its READY line, and keeps every process of a test so that it can be killed and
 * its output shown when an assertion fails.
 */
import { SpawnedTs, spawnTs, waitForLine } from './spawn';

export interface WorkerProcess {
  name: string;
  child: SpawnedTs;
  pid: number;
  /** Settles when the process has exited. */
  exited: Promise<void>;
  lines(): string[];
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
  send(line: string): void;
  alive(): boolean;
  /** Sends `signal` (default SIGKILL); for SIGKILL also waits until the process is gone. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export interface WorkerSetOptions {
  fixture: string;
  /** The test database's URL (read when a worker starts). */
  url: () => string;
  /** Environment every worker gets before its own (e.g. the fixture's switches, blanked). */
  baseEnv?: Record<string, string | number>;
  bootMs?: number;
}

/** The worker processes of one test: start them, kill them all, print what they said. */
export class WorkerSet {
  private workers: WorkerProcess[] = [];

  constructor(private readonly options: WorkerSetOptions) {}

  /** Spawns a worker and waits for its READY line (app.init() resolved: migrations ran, recovery swept). */
  async start(name: string, env: Record<string, string | number> = {}): Promise<WorkerProcess> {
    const worker = this.spawn(name, env);
    await worker.waitFor(/^READY /, this.options.bootMs ?? 120_000);
    return worker;
  }

  /** Spawns a worker without waiting for it. */
  spawn(name: string, env: Record<string, string | number> = {}): WorkerProcess {
    const child = spawnTs(this.options.fixture, {
      env: {
        ...stringEnv(this.options.baseEnv ?? {}),
        ...stringEnv(env),
        DATABASE_URL: this.options.url(),
        EXECUTOR_ID: name,
        NO_COLOR: '1',
      },
    });
    const exited = child.exited.then(() => undefined);
    const worker: WorkerProcess = {
      name,
      child,
      pid: child.pid!,
      exited,
      lines: () => child.lines,
      waitFor: (pattern, timeoutMs = 60_000) => waitForLine(child, pattern, timeoutMs),
      send: (line) => void child.stdin!.write(`${line}\n`),
      alive: () => child.exitCode === null && child.signalCode === null,
      kill: async (signal = 'SIGKILL') => {
        if (!worker.alive()) return;
        child.kill(signal);
        if (signal === 'SIGKILL') await exited;
      },
    };
    this.workers.push(worker);
    return worker;
  }

  all(): WorkerProcess[] {
    return [...this.workers];
  }

  /** SIGKILLs every worker still running (SIGKILL also ends a SIGSTOPped one). */
  async killAll(): Promise<void> {
    const workers = this.workers;
    this.workers = [];
    await Promise.all(workers.map((worker) => worker.kill('SIGKILL')));
  }

  /** What every worker printed, for failure messages (the last `tail` lines of each). */
  outputs(tail = 40): string {
    return this.workers
      .map((w) => `--- ${w.name} (pid ${w.pid})\n${w.lines().slice(-tail).join('\n')}`)
      .join('\n');
  }
}

function stringEnv(env: Record<string, string | number>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).map(([key, value]) => [key, String(value)]));
}

/** Percentile (nearest rank) of numbers sorted ascending. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}
