import { Client } from 'pg';
import { createTestDatabase, TestDatabase } from './support/database';

describe('test PostgreSQL provider', () => {
  const created: TestDatabase[] = [];
  const create = async () => {
    const db = await createTestDatabase();
    created.push(db);
    return db;
  };

  afterAll(async () => {
    await Promise.all(created.map((db) => db.drop()));
  });

  it('gives a database on a PostgreSQL server', async () => {
    const db = await create();
    const client = new Client({ connectionString: db.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ version: string; db: string }>(
        'select version() as version, current_database() as db',
      );
      expect(rows[0].version).toMatch(/^PostgreSQL \d+/);
      expect(rows[0].db).toBe(db.name);
    } finally {
      await client.end();
    }
  });

  it('gives a different database on every call', async () => {
    const [a, b] = await Promise.all([create(), create()]);
    expect(a.name).not.toBe(b.name);
    expect(a.url).not.toBe(b.url);

    const ca = new Client({ connectionString: a.url });
    const cb = new Client({ connectionString: b.url });
    await Promise.all([ca.connect(), cb.connect()]);
    try {
      await ca.query('create table only_in_a (id int)');
      const { rows } = await cb.query(`select to_regclass('only_in_a') as t`);
      expect(rows[0].t).toBeNull();
    } finally {
      await Promise.all([ca.end(), cb.end()]);
    }
  });

  it('drop() removes the database even while connections are open', async () => {
    const db = await create();
    const client = new Client({ connectionString: db.url });
    client.on('error', () => undefined); // the connection is terminated by drop()
    await client.connect();

    await db.drop();

    const admin = new Client({ connectionString: process.env.DURABLE_TEST_BASE_URL });
    await admin.connect();
    try {
      const { rows } = await admin.query('select 1 from pg_database where datname = $1', [db.name]);
      expect(rows).toHaveLength(0);
    } finally {
      await admin.end();
      await client.end().catch(() => undefined);
    }
  });
});
