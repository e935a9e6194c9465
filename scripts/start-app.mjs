// `npm start`: runs the sample provisioning app. Uses DATABASE_URL when set; otherwise an embedded
// PostgreSQL whose data lives in .data/postgres, so a restart resumes the runs it left.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startPostgres } from './postgres.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const pg = await startPostgres({ dataDir: path.join(root, '.data', 'postgres'), persistent: true });
console.log(`PostgreSQL: ${pg.kind}${pg.kind === 'embedded' ? ' (data in .data/postgres)' : ''}`);

const app = spawn(
  process.execPath,
  ['-r', '@swc-node/register', path.join(root, 'apps/provisioning/src/main.ts')],
  { cwd: root, stdio: 'inherit', env: { ...process.env, DATABASE_URL: pg.url } },
);

let stopping = false;
const stop = (signal) => {
  if (stopping) return;
  stopping = true;
  app.kill(signal);
};
process.on('SIGINT', () => stop('SIGINT'));
process.on('SIGTERM', () => stop('SIGTERM'));
app.on('exit', async (code, signal) => {
  await pg.stop();
  process.exit(code ?? (signal ? 1 : 0));
});
