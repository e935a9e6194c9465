// `npm start`: runs the sample provisioning app. Uses DATABASE_URL when set; otherwise an embedded
// PostgreSQL whose data lives in .data/postgres (DURABLE_START_DATA_DIR overrides), so a restart
// resumes the runs it left.
//
// Stopping: SIGINT (Ctrl-C) or SIGTERM is forwarded once to the app, which drains its runs and closes;
// then PostgreSQL is stopped, and this process exits 0. The app and PostgreSQL run in process groups of
// their own so that a terminal's Ctrl-C reaches them only through here, in that order. Should this
// process die, the app sees its IPC channel close and shuts down, and PostgreSQL sees its stdin end.
import { spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dataDir = process.env.DURABLE_START_DATA_DIR ?? path.join(root, '.data', 'postgres');

let stopping = false;
let app;
let postgres;
const stop = (signal) => {
  if (stopping) return;
  stopping = true;
  if (app && app.exitCode === null && app.signalCode === null) app.kill(signal);
  else void stopPostgres().then(() => process.exit(0));
};
process.on('SIGINT', () => stop('SIGINT'));
process.on('SIGTERM', () => stop('SIGTERM'));

const database = process.env.DATABASE_URL
  ? { url: process.env.DATABASE_URL, kind: 'external' }
  : await startPostgresServer();
console.log(
  `PostgreSQL: ${database.kind}${database.kind === 'embedded' ? ` (data in ${path.relative(root, dataDir)})` : ''}`,
);
if (stopping) {
  await stopPostgres();
  process.exit(0);
}

app = spawn(
  process.execPath,
  ['-r', '@swc-node/register', path.join(root, 'apps/provisioning/src/main.ts')],
  {
    cwd: root,
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    detached: true,
    env: { ...process.env, DATABASE_URL: database.url },
  },
);
app.on('exit', async (code, signal) => {
  await stopPostgres();
  // Ended by the signal we forwarded: a normal stop.
  process.exit(stopping && (signal === 'SIGINT' || signal === 'SIGTERM' || code === 0) ? 0 : (code ?? 1));
});

async function startPostgresServer() {
  postgres = spawn(process.execPath, [path.join(root, 'scripts/postgres-server.mjs'), dataDir], {
    cwd: root,
    stdio: ['pipe', 'pipe', 'inherit'],
    detached: true,
  });
  const exited = new Promise((resolve) => postgres.once('exit', resolve));
  postgres.exited = exited;
  const ready = new Promise((resolve, reject) => {
    readline.createInterface({ input: postgres.stdout }).on('line', (line) => {
      if (line.startsWith('READY ')) resolve(JSON.parse(line.slice('READY '.length)));
    });
    exited.then((code) => reject(new Error(`PostgreSQL did not start (exit code ${code})`)));
  });
  return ready;
}

async function stopPostgres() {
  if (!postgres || postgres.exitCode !== null || postgres.signalCode !== null) return;
  postgres.stdin.end();
  await postgres.exited;
}
