/**
 * `npm start` (scripts/start-app.mjs) with its embedded PostgreSQL: SIGINT (a terminal's Ctrl-C) and
 * SIGTERM reach the app first, which drains and closes, then PostgreSQL stops; the process exits 0 and
 * prints no error stack, and no PostgreSQL is left running on the data directory.
 */
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { waitUntil } from './support/helpers';

jest.setTimeout(300_000);

const ROOT = path.resolve(__dirname, '..');
let dataRoot: string;
const started: ChildProcess[] = [];

beforeAll(() => {
  dataRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'durable-start-'));
  fs.chmodSync(dataRoot, 0o755); // the postgres user (when the tests run as root) must reach its data
});

afterAll(() => {
  for (const child of started) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  fs.rmSync(dataRoot, { recursive: true, force: true });
});

function startApp() {
  const child = spawn(process.execPath, [path.join(ROOT, 'scripts/start-app.mjs')], {
    cwd: ROOT,
    env: {
      ...process.env,
      DATABASE_URL: '',
      PORT: '0',
      NO_COLOR: '1',
      DURABLE_START_DATA_DIR: path.join(dataRoot, 'postgres'),
      SWC_NODE_PROJECT: path.join(ROOT, 'tsconfig.json'),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // a process group of its own, as a terminal gives `npm start`
  });
  started.push(child);
  const lines: string[] = [];
  for (const stream of [child.stdout!, child.stderr!])
    readline.createInterface({ input: stream }).on('line', (line) => lines.push(line));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, lines, exited };
}

/** Postgres processes still running on our data directory. */
function postgresOnDataDir(): number[] {
  const dir = path.join(dataRoot, 'postgres');
  return fs
    .readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir);
      } catch {
        return false;
      }
    })
    .map(Number);
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  it(`stops on ${signal}: the app drains first, then PostgreSQL; exit 0 and no error stack`, async () => {
    const { child, lines, exited } = startApp();
    await waitUntil(
      'the app to listen',
      async () => (lines.some((line) => line.includes('Provisioning API listening on')) ? true : undefined),
      240_000,
      () => lines.slice(-20).join('\n'),
    );
    expect(postgresOnDataDir().length).toBeGreaterThan(0);
    // Ctrl-C in a terminal signals the whole foreground process group; `kill` signals the process.
    if (signal === 'SIGINT') process.kill(-child.pid!, signal);
    else child.kill(signal);
    expect(await exited).toEqual({ code: 0, signal: null });
    const output = lines.join('\n');
    expect(output).not.toMatch(/^\s+at /m);
    expect(output).not.toMatch(/\bERROR\b|Error:/);
    expect(output).not.toMatch(/postgres:\/\/[^\s]*:[^\s*@]+@/); // no password in the output
    await waitUntil(
      'PostgreSQL to stop',
      async () => (postgresOnDataDir().length === 0 ? true : undefined),
      30_000,
    );
  });
}
