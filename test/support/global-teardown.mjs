import pg from 'pg';
import { dropDatabase } from '../../scripts/postgres.mjs';

// After a run, Jest waits for the event loop of its main process to drain. A handle a test leaked
// there (with one test file Jest runs in band) would hang the run forever: end the process if it
// is still alive this long after teardown. Never in watch mode. DURABLE_TEST_EXIT_WATCHDOG_MS=0 disables.
const WATCHDOG_MS = Number(process.env.DURABLE_TEST_EXIT_WATCHDOG_MS ?? 5_000);

export default async function globalTeardown(globalConfig) {
  if (WATCHDOG_MS > 0 && !globalConfig?.watch && !globalConfig?.watchAll) {
    setTimeout(() => {
      process.stderr.write(
        `\n[test teardown] Jest was still running ${WATCHDOG_MS} ms after the tests ended (a leaked handle: ` +
          'run with --detectOpenHandles to find it); exiting now.\n',
      );
      process.exit(); // keeps Jest's failure exit code, which it sets in an 'exit' listener
    }, WATCHDOG_MS).unref();
  }
  const server = globalThis.__DURABLE_TEST_POSTGRES__;
  if (!server) return;
  delete globalThis.__DURABLE_TEST_POSTGRES__;
  try {
    // A throwaway server goes away with its databases; on an external one (DATABASE_URL), drop
    // what this run created and a test did not drop.
    if (server.kind === 'external') await dropRunDatabases(server.url, process.env.DURABLE_TEST_RUN_ID);
  } finally {
    await server.stop();
  }
}

async function dropRunDatabases(baseUrl, runId) {
  if (!runId || !/^[a-z0-9]+$/.test(runId)) return;
  const client = new pg.Client({ connectionString: baseUrl });
  await client.connect();
  let names;
  try {
    const { rows } = await client.query('SELECT datname FROM pg_database WHERE datname LIKE $1', [
      `durable\\_t\\_${runId}\\_%`,
    ]);
    names = rows.map((row) => row.datname);
  } finally {
    await client.end();
  }
  for (const name of names) {
    await dropDatabase(baseUrl, name).catch((err) =>
      process.stderr.write(`[test postgres] could not drop leftover database ${name}: ${err.message}\n`),
    );
  }
}
