import { ChildProcess, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');
const REGISTER = require.resolve('@swc-node/register');
const ORPHAN_GUARD = path.join(__dirname, 'orphan-guard.ts');

export interface SpawnTsOptions {
  /** Added to (and overriding) the parent's environment. */
  env?: NodeJS.ProcessEnv;
  /** Arguments after the entry file (process.argv.slice(2) in the child). */
  args?: string[];
  /** Default: the repository root. */
  cwd?: string;
  /** Extra node flags, e.g. ['--enable-source-maps']. */
  nodeArgs?: string[];
  /** Copy the child's output to this process's stderr as it comes (also: DURABLE_TEST_ECHO_CHILD=1). */
  echo?: boolean;
  /** 'pipe' (default: write commands with child.stdin.write) or 'ignore'. */
  stdin?: 'pipe' | 'ignore';
  /** Kill the child when this process dies, even by SIGKILL (default true; see orphan-guard.ts). */
  orphanGuard?: boolean;
}

export type ExitStatus = { code: number | null; signal: NodeJS.Signals | null };

export interface SpawnedTs extends ChildProcess {
  /** Every complete line so far, stdout and stderr interleaved in arrival order. */
  readonly lines: string[];
  readonly stdoutLines: string[];
  readonly stderrLines: string[];
  /** Settles when the process has exited and its output has been collected (never rejects). */
  readonly exited: Promise<ExitStatus>;
}

interface LineState {
  emitter: EventEmitter;
  done: boolean;
}

// State lives on the child and the registry on globalThis (Symbol.for keys), so that a second
// instance of this module (jest.resetModules()) still finds them.
const stateKey = Symbol.for('durable.test.spawn.state');
const registryKey = Symbol.for('durable.test.spawn.registry');
type WithState = ChildProcess & { [stateKey]?: LineState };
type GlobalWithRegistry = typeof globalThis & { [registryKey]?: Set<ChildProcess> };

function killOnExit(this: Set<ChildProcess>): void {
  for (const child of this) child.kill('SIGKILL');
}

/** Children of this test file that still run. They are killed when the file ends (jest-setup.ts). */
function registry(): Set<ChildProcess> {
  const g = globalThis as GlobalWithRegistry;
  return (g[registryKey] ??= new Set<ChildProcess>());
}

let exitHook: (() => void) | undefined;
function track(child: ChildProcess): void {
  const set = registry();
  set.add(child);
  if (!exitHook) {
    // Last resort when this process exits first; only while children run, so that test files
    // that spawn nothing add no 'exit' listener.
    exitHook = killOnExit.bind(set);
    process.on('exit', exitHook);
  }
}
function untrack(child: ChildProcess): void {
  const set = registry();
  set.delete(child);
  if (set.size === 0 && exitHook) {
    process.removeListener('exit', exitHook);
    exitHook = undefined;
  }
}

/**
 * Runs a TypeScript entry file in a real Node process through @swc-node/register (tsconfig.json:
 * `nest-durable` paths, legacy decorators with metadata). stdin is a pipe (unless stdin: 'ignore');
 * stdout and stderr are piped and collected line by line.
 */
export function spawnTs(file: string, options: SpawnTsOptions = {}): SpawnedTs {
  const {
    env,
    args = [],
    cwd = ROOT,
    nodeArgs = [],
    echo = process.env.DURABLE_TEST_ECHO_CHILD === '1',
    stdin = 'pipe',
    orphanGuard = true,
  } = options;
  const entry = path.resolve(ROOT, file);
  const preload = ['-r', REGISTER, ...(orphanGuard ? ['-r', ORPHAN_GUARD] : [])];
  const child = spawn(process.execPath, [...nodeArgs, ...preload, entry, ...args], {
    cwd,
    env: {
      ...process.env,
      // swc-node reads <cwd>/tsconfig.json unless told otherwise: pin it so any cwd works.
      SWC_NODE_PROJECT: path.join(ROOT, 'tsconfig.json'),
      ...(orphanGuard ? { DURABLE_TEST_PARENT_PID: String(process.pid) } : {}),
      ...env,
    },
    stdio: [stdin, 'pipe', 'pipe'],
  }) as WithState & {
    lines: string[];
    stdoutLines: string[];
    stderrLines: string[];
    exited: Promise<ExitStatus>;
  };

  const state: LineState = { emitter: new EventEmitter(), done: false };
  state.emitter.setMaxListeners(0);
  child[stateKey] = state;
  child.lines = [];
  child.stdoutLines = [];
  child.stderrLines = [];

  const collect = (stream: NodeJS.ReadableStream | null, own: string[], tag: string) => {
    if (!stream) return;
    let partial = '';
    const push = (line: string) => {
      own.push(line);
      child.lines.push(line);
      if (echo) process.stderr.write(`[${path.basename(entry)} ${child.pid} ${tag}] ${line}\n`);
      state.emitter.emit('line', line);
    };
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const parts = (partial + chunk).split(/\r?\n/);
      partial = parts.pop() ?? '';
      for (const line of parts) push(line);
    });
    stream.on('end', () => {
      if (partial) push(partial);
      partial = '';
    });
  };
  collect(child.stdout, child.stdoutLines, 'out');
  collect(child.stderr, child.stderrLines, 'err');
  // Writing to the stdin of a process that died must not crash the test with EPIPE.
  child.stdin?.on('error', () => undefined);

  track(child);
  child.exited = new Promise<ExitStatus>((resolve) => {
    const finish = (status: ExitStatus) => {
      if (state.done) return;
      state.done = true;
      untrack(child);
      state.emitter.emit('done');
      resolve(status);
    };
    // 'close' comes after the streams ended, so every line has been collected by then.
    child.once('close', (code, signal) => finish({ code, signal }));
    child.once('error', () => finish({ code: null, signal: null })); // spawn failure: no 'close' may follow
  });
  return child;
}

/**
 * Resolves with the first line (stdout or stderr) matching `pattern`: among the lines already
 * printed from index `since` on (default 0: all of them), else the next one to come. Rejects on
 * timeout, or when the process ends without printing one.
 */
export function waitForLine(
  child: ChildProcess,
  pattern: RegExp,
  timeoutMs = 60_000,
  since = 0,
): Promise<string> {
  const state = (child as WithState)[stateKey];
  const lines = (child as Partial<SpawnedTs>).lines;
  if (!state || !lines)
    return Promise.reject(new Error('waitForLine: the process was not started by spawnTs()'));
  const matches = (line: string) => {
    pattern.lastIndex = 0;
    return pattern.test(line);
  };
  const seen = lines.slice(since).find(matches);
  if (seen !== undefined) return Promise.resolve(seen);

  return new Promise((resolve, reject) => {
    const tail = () => lines.slice(-20).join('\n');
    const cleanup = () => {
      clearTimeout(timer);
      state.emitter.off('line', onLine);
      state.emitter.off('done', onDone);
    };
    const onLine = (line: string) => {
      if (!matches(line)) return;
      cleanup();
      resolve(line);
    };
    const onDone = () => {
      cleanup();
      reject(
        new Error(
          `process ${child.pid} exited (code ${child.exitCode}, signal ${child.signalCode}) without a line matching ` +
            `${pattern}; last output:\n${tail()}`,
        ),
      );
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(
        new Error(
          `no line matching ${pattern} from process ${child.pid} within ${timeoutMs} ms; last output:\n${tail()}`,
        ),
      );
    }, timeoutMs);
    state.emitter.on('line', onLine);
    if (state.done) onDone();
    else state.emitter.on('done', onDone);
  });
}

/** Sends `signal` (default SIGKILL: a crash) and waits until the process is gone. */
export async function killAndWait(
  child: SpawnedTs,
  signal: NodeJS.Signals = 'SIGKILL',
  timeoutMs = 30_000,
): Promise<ExitStatus> {
  if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`process ${child.pid} still alive ${timeoutMs} ms after ${signal}`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([child.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Kills every process spawnTs() started in this test file that is still running. */
export async function killAllSpawned(): Promise<void> {
  const children = [...registry()] as SpawnedTs[];
  await Promise.all(children.map((child) => killAndWait(child, 'SIGKILL').catch(() => undefined)));
}
