// `npm run migration:run` / `migration:revert`: the TypeORM CLI on migrations/data-source.ts (the
// library's migrations first, then the sample app's). Uses DATABASE_URL, else the embedded PostgreSQL
// that `npm start` keeps in .data/postgres.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startPostgres } from './postgres.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const cli = require.resolve('typeorm/cli.js');
const pg = await startPostgres({ dataDir: path.join(root, '.data', 'postgres'), persistent: true });

const child = spawn(
  process.execPath,
  [
    '-r',
    '@swc-node/register',
    cli,
    ...process.argv.slice(2),
    '-d',
    path.join(root, 'migrations/data-source.ts'),
  ],
  {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, DATABASE_URL: pg.url, SWC_NODE_PROJECT: path.join(root, 'tsconfig.json') },
  },
);
child.on('exit', async (code, signal) => {
  await pg.stop();
  process.exit(code ?? (signal ? 1 : 0));
});
