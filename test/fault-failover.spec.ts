/**
 * Failover with a multi-host connection string (`host1,host2` and target_session_attrs=read-write),
 * which node-postgres cannot use by itself, through the library's postgresFailover(): a primary and a
 * streaming standby this test starts (test/support/owned-postgres.ts; synchronous replication, so no
 * acknowledged commit is lost).
 */
import { INestApplicationContext } from '@nestjs/common';
import { DurableClient } from 'nest-durable';
import { createDurableApp } from './support/durable-app';
import { prepareDatabase } from './support/fault-workload';
import { dataSourceOf, waitUntil } from './support/helpers';
import { OwnedPostgres } from './support/owned-postgres';

jest.setTimeout(300_000);

let primary: OwnedPostgres;
let standby: OwnedPostgres;
let app: INestApplicationContext | undefined;

/** libpq's multi-host form, hosts in the given order. */
const multiHost = (...servers: OwnedPostgres[]) =>
  `postgres://postgres@${servers.map((s) => `127.0.0.1:${s.port}`).join(',')}/app?target_session_attrs=read-write`;

beforeAll(async () => {
  primary = await OwnedPostgres.create();
  await prepareDatabase(await primary.createDatabase('app'));
  standby = await primary.createStandby();
  await primary.query(`ALTER SYSTEM SET synchronous_standby_names = 'standby'`);
  await primary.query('SELECT pg_reload_conf()');
  await waitUntil(
    'the standby to stream synchronously',
    async () => {
      const rows = await primary.query<{ sync_state: string }>('SELECT sync_state FROM pg_stat_replication');
      return rows[0]?.sync_state === 'sync' ? true : undefined;
    },
    60_000,
    () => `${primary.output()}\n${standby.output()}`,
  );
}, 180_000);

afterEach(async () => {
  await app?.close();
  app = undefined;
});

afterAll(async () => {
  await standby?.destroy();
  await primary?.destroy();
});

test('a standby listed first is skipped: the app connects to the read-write host', async () => {
  app = await createDurableApp({
    url: multiHost(standby, primary),
    failover: true,
    providers: [],
    durable: {},
  });
  const [row] = await dataSourceOf(app).query(
    'SELECT pg_is_in_recovery() AS recovery, current_setting($1) AS port',
    ['port'],
  );
  expect(row).toEqual({ recovery: false, port: String(primary.port) });
  const handle = await app.get(DurableClient).start('chaosFlow', [1], { id: 'routed-1' });
  expect(handle.id).toBe('routed-1');
});
