// npm run chaos [-- scenario ...]: the database-fault scenarios at full size (test/chaos/run-chaos.ts),
// each on a PostgreSQL server of its own, never the machine's shared one. One summary line per scenario.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

const child = spawn(
  process.execPath,
  [
    '-r',
    require.resolve('@swc-node/register'),
    path.join(root, 'test/chaos/run-chaos.ts'),
    ...process.argv.slice(2),
  ],
  {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, SWC_NODE_PROJECT: path.join(root, 'tsconfig.json') },
  },
);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(signal ? 1 : (code ?? 1)));
