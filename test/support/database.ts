import { randomBytes } from 'node:crypto';
import { Client } from 'pg';

export interface TestDatabase {
  /** Connection URL of the new database (it carries credentials: do not log it). */
  url: string;
  name: string;
  /** Terminates the connections still open to the database and drops it. Idempotent. */
  drop(): Promise<void>;
}

/**
 * Creates a fresh, uniquely named database on the run's PostgreSQL server (started by
 * test/support/global-setup.mjs), so that every test file is isolated from the others.
 *
 *   let db: TestDatabase;
 *   beforeAll(async () => (db = await createTestDatabase()));
 *   afterAll(() => db.drop());
 *
 * Databases a test forgets to drop are removed by the global teardown (or die with the server).
 */
export async function createTestDatabase(): Promise<TestDatabase> {
  const baseUrl = process.env.DURABLE_TEST_BASE_URL;
  if (!baseUrl) {
    throw new Error(
      'DURABLE_TEST_BASE_URL is not set: run the tests through jest (jest.config.js starts PostgreSQL)',
    );
  }
  const runId = process.env.DURABLE_TEST_RUN_ID ?? 'norun';
  const name = `durable_t_${runId}_${randomBytes(5).toString('hex')}`;
  assertIdentifier(name);

  await withClient(baseUrl, (client) => client.query(`CREATE DATABASE "${name}"`));

  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  let dropped: Promise<void> | undefined;
  return {
    url: url.toString(),
    name,
    drop: () => (dropped ??= dropTestDatabase(baseUrl, name)),
  };
}

async function dropTestDatabase(baseUrl: string, name: string): Promise<void> {
  await withClient(baseUrl, async (client) => {
    await client.query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
      [name],
    );
    const { rows } = await client.query<{ v: number }>(
      `SELECT current_setting('server_version_num')::int AS v`,
    );
    const force = rows[0].v >= 130000 ? ' WITH (FORCE)' : '';
    await client.query(`DROP DATABASE IF EXISTS "${name}"${force}`);
  });
}

function assertIdentifier(name: string): void {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) || Buffer.byteLength(name) > 63) {
    throw new Error(`invalid database name ${JSON.stringify(name)}`);
  }
}

async function withClient<T>(url: string, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  client.on('error', () => undefined); // a terminated admin connection must not crash the worker
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}
