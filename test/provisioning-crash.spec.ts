/**
 * Crash test of the sample provisioning app as real processes: the fake provider runs in a process of
 * its own (it outlives the app, like a real cloud), the app is killed with SIGKILL while tenants are
 * being provisioned, then restarted with the same executor id. Afterwards every tenant must settle, no
 * quota may be reserved twice and the provider must have seen at most one database per tenant.
 */
import { Client } from 'pg';
import { createTestDatabase, TestDatabase } from './support/database';
import { killAndWait, SpawnedTs, spawnTs, waitForLine } from './support/spawn';

jest.setTimeout(300_000);

const APP = 'apps/provisioning/src/main.ts';
const PROVIDER = 'apps/provisioning/src/fake-provider/fake-provider.main.ts';
const BOOT_MS = 120_000;

interface Call {
  operation: string;
  tenantId: string | null;
  tenantName: string | null;
  outcome: string;
  idempotencyKey: string | null;
}

interface Resources {
  databases: { id: string; tenantId: string; deletedAt: string | null }[];
  dnsRecords: { id: string; tenantId: string; deletedAt: string | null }[];
  emails: { id: string; tenantId: string }[];
}

let database: TestDatabase;
let db: Client;
let providerProcess: SpawnedTs;
let providerUrl: string;

beforeAll(async () => {
  database = await createTestDatabase();
  db = new Client({ connectionString: database.url });
  await db.connect();
  providerProcess = spawnTs(PROVIDER, {
    env: { FAKE_PROVIDER_LATENCY_MS: '100-300', FAKE_PROVIDER_FAILURE_RATE: '0.15', FAKE_PROVIDER_PORT: '0' },
    stdin: 'ignore',
  });
  const line = await waitForLine(providerProcess, /FAKE_PROVIDER_LISTENING (\S+)/, BOOT_MS);
  providerUrl = /FAKE_PROVIDER_LISTENING (\S+)/.exec(line)![1];
});

afterAll(async () => {
  if (providerProcess) await killAndWait(providerProcess).catch(() => undefined);
  await db?.end().catch(() => undefined);
  await database?.drop();
});

async function startApp(): Promise<{ child: SpawnedTs; url: string }> {
  const child = spawnTs(APP, {
    env: {
      DATABASE_URL: database.url,
      PORT: '0',
      PROVIDER_URL: providerUrl,
      EXECUTOR_ID: 'provisioning-crash-test',
      APPROVAL_TIMEOUT: '2m',
      DURABLE_POLL_INTERVAL_MS: '200',
      NO_COLOR: '1',
    },
    stdin: 'ignore',
  });
  const line = await waitForLine(child, /Provisioning API listening on (http:\/\/\S+)/, BOOT_MS);
  return { child, url: /listening on (http:\/\/\S+)/.exec(line)![1] };
}

async function http<T>(
  url: string,
  init?: RequestInit & { json?: unknown },
): Promise<{ status: number; body: T }> {
  const response = await fetch(url, {
    ...init,
    headers:
      init?.json === undefined ? init?.headers : { 'content-type': 'application/json', ...init?.headers },
    body: init?.json === undefined ? init?.body : JSON.stringify(init.json),
  });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : undefined) as T };
}

const providerCalls = async () => (await http<{ calls: Call[] }>(`${providerUrl}/calls`)).body.calls;

async function until(what: string, ms: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

it('killed with SIGKILL mid-flight and restarted, the app settles every tenant exactly once', async () => {
  // Two tenants whose DNS record the provider refuses for good: they compensate (some during the crash).
  const fault = await http(`${providerUrl}/_control/faults`, {
    method: 'POST',
    json: { operation: 'createDnsRecord', tenantNamePrefix: 'doomed-', status: 422 },
  });
  expect(fault.status).toBe(201);

  let app = await startApp();
  const plans = [
    ...Array<string>(9).fill('free'),
    ...Array<string>(7).fill('pro'),
    ...Array<string>(4).fill('enterprise'),
  ];
  const tenants: { id: string; name: string; plan: string }[] = [];
  const requests = [
    { name: 'doomed-1', plan: 'pro' },
    { name: 'doomed-2', plan: 'free' },
    ...plans.map((plan, i) => ({ name: `crash-${i}-${plan}`, plan })),
  ];
  for (const [i, { name, plan }] of requests.entries()) {
    const res = await http<{ tenantId: string }>(`${app.url}/tenants`, {
      method: 'POST',
      headers: { 'idempotency-key': `crash-test-${i}` },
      json: { name, plan, region: i % 2 ? 'eu-west-1' : 'us-east-2', adminEmail: `admin${i}@example.test` },
    });
    expect(res.status).toBe(202);
    tenants.push({ id: res.body.tenantId, name, plan });
  }

  // Mid-flight: some databases exist at the provider, a doomed tenant is being compensated, and not
  // every tenant is done.
  await until('provider has created some databases and refused a DNS record', 20_000, async () => {
    const calls = await providerCalls();
    const created = calls.filter((c) => c.operation === 'createDatabase' && c.outcome.startsWith('created'));
    const refused = calls.filter((c) => c.operation === 'createDnsRecord' && c.outcome === 'rejected');
    return created.length >= 6 && refused.length >= 1;
  });
  const before = await db.query<{ status: string; n: number }>(
    `SELECT status, count(*)::int AS n FROM tenants GROUP BY status ORDER BY status`,
  );
  const killed = await killAndWait(app.child, 'SIGKILL');
  expect(killed.signal).toBe('SIGKILL');
  const unfinished = before.rows.filter((r) => !['active', 'failed', 'cancelled'].includes(r.status));
  expect(unfinished.reduce((n, r) => n + r.n, 0)).toBeGreaterThan(0);

  // A client retrying its create after the crash gets the same tenant: nothing new is created.
  app = await startApp();
  const first = requests[0];
  const replay = await http<{ tenantId: string; created: boolean }>(`${app.url}/tenants`, {
    method: 'POST',
    headers: { 'idempotency-key': 'crash-test-0' },
    json: { name: first.name, plan: first.plan, region: 'us-east-2', adminEmail: 'admin0@example.test' },
  });
  expect(replay.status).toBe(202);
  expect(replay.body).toMatchObject({ tenantId: tenants[0].id, created: false });

  // Approve the enterprise tenants (the signal is stored even if a run is not waiting yet).
  for (const tenant of tenants.filter((t) => t.plan === 'enterprise')) {
    const res = await http(`${app.url}/tenants/${tenant.id}/approve`, {
      method: 'POST',
      json: { by: 'crash-test' },
    });
    expect(res.status).toBe(202);
  }

  // Every tenant settles and every run ends.
  await until('every tenant settles', 60_000, async () => {
    const { rows } = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM tenants WHERE status NOT IN ('active', 'failed', 'cancelled')`,
    );
    const runs = await http<{ runs: unknown[] }>(`${app.url}/runs?status=pending,running,sleeping,waiting`);
    return rows[0].n === 0 && runs.body.runs.length === 0;
  });

  const { rows: final } = await db.query<{ id: string; name: string; status: string; run_id: string }>(
    `SELECT id, name, status, run_id FROM tenants`,
  );
  expect(final).toHaveLength(tenants.length);
  for (const tenant of final)
    expect([tenant.name, tenant.status]).toEqual([
      tenant.name,
      tenant.name.startsWith('doomed-') ? 'failed' : 'active',
    ]);

  // Recovery really happened: runs of the first life were claimed again after the restart.
  const runs = (
    await http<{ runs: { id: string; status: string; attempts: number }[] }>(`${app.url}/runs?limit=1000`)
  ).body.runs;
  expect(runs).toHaveLength(tenants.length);
  // (Enterprise runs are claimed twice anyway: the approval wakes them.)
  const enterprise = new Set(tenants.filter((t) => t.plan === 'enterprise').map((t) => `provision:${t.id}`));
  const reclaimed = runs.filter((r) => r.attempts >= 2 && !enterprise.has(r.id));
  expect(reclaimed.length).toBeGreaterThan(0);
  for (const run of runs) {
    const tenant = final.find((t) => t.run_id === run.id)!;
    expect([tenant.name, run.status]).toEqual([
      tenant.name,
      tenant.name.startsWith('doomed-') ? 'failed' : 'succeeded',
    ]);
  }

  // No quota reserved twice: one reservation row per tenant (its primary key), released only for the
  // failed ones, and every counter equals the reservations it holds.
  const { rows: reservations } = await db.query<{ tenant_id: string; released: boolean }>(
    `SELECT tenant_id, released_at IS NOT NULL AS released FROM quota_reservations`,
  );
  expect(reservations).toHaveLength(tenants.length);
  for (const tenant of final) {
    const held = reservations.filter((r) => r.tenant_id === tenant.id);
    expect(held).toEqual([{ tenant_id: tenant.id, released: tenant.status === 'failed' }]);
  }
  const { rows: counters } = await db.query<{
    plan: string;
    region: string;
    reserved: number;
    holding: number;
  }>(
    `SELECT q.plan, q.region, q.reserved,
       (SELECT count(*)::int FROM quota_reservations r
        WHERE r.plan = q.plan AND r.region = q.region AND r.released_at IS NULL) AS holding
     FROM plan_quotas q`,
  );
  for (const counter of counters) expect(counter.reserved).toBe(counter.holding);
  const { rows: admins } = await db.query<{ tenant_id: string; n: number }>(
    `SELECT tenant_id, count(*)::int AS n FROM tenant_users GROUP BY tenant_id`,
  );
  expect(admins.every((a) => a.n === 1)).toBe(true);
  expect(admins).toHaveLength(final.filter((t) => t.status === 'active').length);

  // At the edge: at most one database per tenant was ever created (one idempotency key per tenant),
  // active tenants hold exactly one live database, DNS record and welcome email; failed ones none.
  const calls = await providerCalls();
  const resources = (await http<Resources>(`${providerUrl}/resources`)).body;
  const problems: string[] = [];
  for (const tenant of final) {
    const creates = calls.filter((c) => c.tenantId === tenant.id && c.operation === 'createDatabase');
    const databases = resources.databases.filter((d) => d.tenantId === tenant.id);
    const live = (items: { tenantId: string; deletedAt: string | null }[]) =>
      items.filter((d) => d.tenantId === tenant.id && d.deletedAt === null).length;
    const emails = resources.emails.filter((e) => e.tenantId === tenant.id).length;
    const got = [databases.length, live(resources.databases), live(resources.dnsRecords), emails];
    const expected = tenant.status === 'active' ? [1, 1, 1, 1] : [1, 0, 0, 0];
    if (new Set(creates.map((c) => c.idempotencyKey)).size !== 1 || got.join() !== expected.join()) {
      const view = await http<{ steps: { key: string; status: string; attempts: number }[] }>(
        `${app.url}/tenants/${tenant.id}`,
      );
      problems.push(
        `${tenant.name} (${tenant.status}): databases created/live, DNS live, emails = ${got.join('/')}, ` +
          `expected ${expected.join('/')}; keys ${[...new Set(creates.map((c) => c.idempotencyKey))].length}; ` +
          `steps ${view.body.steps.map((st) => `${st.key}:${st.status}x${st.attempts}`).join(' ')}`,
      );
    }
  }
  expect(problems).toEqual([]);

  // A clean stop this time: SIGTERM runs the shutdown hooks (Nest then re-raises the signal).
  const stopped = await killAndWait(app.child, 'SIGTERM', 20_000);
  expect(stopped.code === 0 || stopped.signal === 'SIGTERM').toBe(true);
  expect(app.child.lines.some((l) => /ERROR/.test(l))).toBe(false);
});
