/**
 * End-to-end tests of the sample provisioning app: the real AppModule (TypeORM, migrations, the
 * library, the in-process fake provider) on a fresh PostgreSQL database, driven over HTTP with
 * supertest. Assertions are about HTTP answers, the app's tables and what the fake provider saw.
 */
import { ConsoleLogger, INestApplication, LogLevel } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { AppModule } from '../apps/provisioning/src/app.module';
import { configureApp } from '../apps/provisioning/src/app.setup';
import type { FakeProvider, ProviderCall } from '../apps/provisioning/src/fake-provider/fake-provider';
import { ProviderEndpoint } from '../apps/provisioning/src/provider/provider-endpoint';
import { createTestDatabase, TestDatabase } from './support/database';
import { sql } from './support/helpers';

const APPROVAL_TIMEOUT_MS = 4_000;

const ENV = {
  APPROVAL_TIMEOUT: `${APPROVAL_TIMEOUT_MS}ms`,
  FAKE_PROVIDER_LATENCY_MS: '2-10',
  FAKE_PROVIDER_FAILURE_RATE: '0',
  DURABLE_POLL_INTERVAL_MS: '100',
  EXECUTOR_ID: `provisioning-e2e-${process.pid}`,
  PROVIDER_URL: '',
  PORT: undefined,
};

interface TenantView {
  tenant: {
    id: string;
    name: string;
    plan: string;
    status: string;
    runId: string;
    databaseId: string | null;
    dnsName: string | null;
    approvedBy: string | null;
    failureReason: string | null;
    idempotencyKey: string | null;
  };
  run: {
    id: string;
    status: string;
    attempts: number;
    error: { name: string; message: string } | null;
  } | null;
  steps: {
    key: string;
    name: string;
    kind: string;
    status: string;
    attempts: number;
    error: { name: string; message: string } | null;
    startedAt: string;
    finishedAt: string | null;
    durationMs: number | null;
  }[];
}

let database: TestDatabase;
let app: INestApplication;
let ds: DataSource;
let provider: FakeProvider;
const savedEnv: Record<string, string | undefined> = {};

beforeAll(async () => {
  database = await createTestDatabase();
  for (const [name, value] of Object.entries({ ...ENV, DATABASE_URL: database.url })) {
    savedEnv[name] = process.env[name];
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  // PROVISIONING_TEST_LOGS=1 (or =warn) shows the app's and the library's logs (or warnings only). (Without a logger of
  // its own, compile() installs Nest's TestingLogger, which drops everything but errors.)
  const logs = process.env.PROVISIONING_TEST_LOGS;
  const logLevels: LogLevel[] =
    logs === 'warn' ? ['error', 'warn'] : logs ? ['error', 'warn', 'log'] : ['error'];
  const moduleRef = await Test.createTestingModule({ imports: [AppModule] })
    .setLogger(new ConsoleLogger({ logLevels }))
    .compile();
  app = configureApp(moduleRef.createNestApplication({ logger: logLevels }), { shutdownHooks: false });
  await app.init();
  ds = app.get(DataSource);
  provider = app.get(ProviderEndpoint).fake!;
  expect(provider).toBeDefined();
});

afterAll(async () => {
  await app?.close();
  await database?.drop();
  for (const [name, value] of Object.entries(savedEnv)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

afterEach(() => provider?.clearFaults());

let counter = 0;
function body(plan: string, overrides: Record<string, unknown> = {}) {
  counter += 1;
  return {
    name: `Tenant ${counter} ${plan}`,
    plan,
    region: 'eu-west-1',
    adminEmail: `admin${counter}@example.test`,
    ...overrides,
  };
}

async function create(payload: Record<string, unknown>, key?: string) {
  const req = request(app.getHttpServer()).post('/tenants').send(payload);
  if (key !== undefined) req.set('Idempotency-Key', key);
  const res = await req;
  expect(res.status).toBe(202);
  return res.body as { tenantId: string; runId: string; status: string; created: boolean };
}

async function view(id: string): Promise<TenantView> {
  const res = await request(app.getHttpServer()).get(`/tenants/${id}`);
  expect(res.status).toBe(200);
  return res.body as TenantView;
}

/** Polls GET /tenants/:id until `accept` holds; fails with the last view otherwise. */
async function waitFor(id: string, accept: (v: TenantView) => boolean, ms = 15_000): Promise<TenantView> {
  const until = Date.now() + ms;
  for (;;) {
    const current = await view(id);
    if (accept(current)) return current;
    if (Date.now() > until)
      throw new Error(`tenant ${id} did not get there within ${ms} ms: ${JSON.stringify(current, null, 1)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const RUN_ENDED = ['succeeded', 'failed', 'cancelled'];
/** Settled: the tenant is active/failed/cancelled and its run has ended (compensations done). */
const settled = (id: string, ms?: number) =>
  waitFor(
    id,
    (v) =>
      ['active', 'failed', 'cancelled'].includes(v.tenant.status) && RUN_ENDED.includes(v.run?.status ?? ''),
    ms,
  );

const stepKeys = (v: TenantView) => v.steps.map((s) => `${s.key}:${s.status}`);

/** supertest parser: the response body as text (for text/event-stream). */
function sseText(
  res: NodeJS.ReadableStream & { setEncoding(e: string): void },
  done: (e: Error | null, body: string) => void,
) {
  let text = '';
  res.setEncoding('utf8');
  res.on('data', (chunk: string) => (text += chunk));
  res.on('end', () => done(null, text));
}

/** Server-sent events: `id`, `event` and JSON `data` of each. */
function parseSse(text: string): { id?: string; event: string; data: Record<string, string> }[] {
  return text
    .split('\n\n')
    .filter((block) => block.trim() !== '')
    .map((block) => {
      const fields = Object.fromEntries(
        block
          .split('\n')
          .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1).trim()]),
      );
      return { id: fields.id, event: fields.event ?? 'message', data: JSON.parse(fields.data) };
    });
}
const callsOf = (tenantId: string, operation?: string): ProviderCall[] =>
  provider.getCalls(tenantId).filter((c) => operation === undefined || c.operation === operation);

async function reservation(tenantId: string) {
  const [row] = await sql<{ released: boolean }>(
    ds,
    'SELECT released_at IS NOT NULL AS released FROM quota_reservations WHERE tenant_id = $1',
    [tenantId],
  );
  return row;
}

async function assertQuotaCountersConsistent() {
  const rows = await sql<{ plan: string; region: string; reserved: number; holding: number }>(
    ds,
    `SELECT q.plan, q.region, q.reserved,
       (SELECT count(*)::int FROM quota_reservations r
        WHERE r.plan = q.plan AND r.region = q.region AND r.released_at IS NULL) AS holding
     FROM plan_quotas q`,
  );
  for (const row of rows) expect(row).toEqual({ ...row, reserved: row.holding });
}

const HAPPY_STEPS = [
  'reserveQuota#1:succeeded',
  'createDatabase#1:succeeded',
  'configureDns#1:succeeded',
  'createAdmin#1:succeeded',
  'sendWelcomeEmail#1:succeeded',
  'activate#1:succeeded',
];

describe('provisioning app: happy paths', () => {
  it.each(['free', 'pro'])('provisions a %s tenant end to end', async (plan) => {
    const created = await create(body(plan));
    expect(created).toEqual({
      tenantId: expect.any(String),
      runId: `provision:${created.tenantId}`,
      status: 'provisioning',
      created: true,
    });
    const done = await settled(created.tenantId);
    expect(done.tenant).toMatchObject({ status: 'active', plan, failureReason: null });
    expect(done.run).toMatchObject({ status: 'succeeded', attempts: 1, error: null });
    expect(stepKeys(done)).toEqual(HAPPY_STEPS);
    for (const step of done.steps) {
      expect(step.attempts).toBe(1);
      expect(new Date(step.finishedAt!).getTime()).toBeGreaterThanOrEqual(new Date(step.startedAt).getTime());
      expect(step.durationMs).toBeGreaterThanOrEqual(0);
    }

    // At the edge: one database, one DNS record, one email, each created with the step's idempotency key.
    const calls = callsOf(created.tenantId);
    expect(calls.map((c) => `${c.operation}:${c.outcome}`)).toEqual([
      'createDatabase:created',
      'createDnsRecord:created',
      'sendEmail:sent',
    ]);
    expect(calls.map((c) => c.idempotencyKey)).toEqual([
      `${created.runId}:createDatabase#1`,
      `${created.runId}:configureDns#1`,
      `${created.runId}:sendWelcomeEmail#1`,
    ]);
    const resources = provider.getResources(created.tenantId);
    expect(resources.databases).toHaveLength(1);
    expect(done.tenant.databaseId).toBe(resources.databases[0].id);
    expect(done.tenant.dnsName).toBe(resources.dnsRecords[0].fqdn);

    // In the database: the quota is held once, the admin and its key exist.
    expect(await reservation(created.tenantId)).toEqual({ released: false });
    const [admin] = await sql<{ users: number; keys: number }>(
      ds,
      `SELECT (SELECT count(*)::int FROM tenant_users WHERE tenant_id = $1 AND role = 'admin') AS users,
              (SELECT count(*)::int FROM api_keys WHERE tenant_id = $1 AND revoked_at IS NULL) AS keys`,
      [created.tenantId],
    );
    expect(admin).toEqual({ users: 1, keys: 1 });
    await assertQuotaCountersConsistent();
  });

  it('an enterprise tenant waits for approval, then is provisioned', async () => {
    const created = await create(body('enterprise'));
    const waiting = await waitFor(created.tenantId, (v) => v.run?.status === 'waiting');
    expect(waiting.tenant.status).toBe('awaiting_approval');
    expect(stepKeys(waiting)).toEqual([
      'reserveQuota#1:succeeded',
      'createDatabase#1:succeeded',
      'configureDns#1:succeeded',
      'markAwaitingApproval#1:succeeded',
      '$signal:approval#1:waiting',
    ]);

    const approved = await request(app.getHttpServer())
      .post(`/tenants/${created.tenantId}/approve`)
      .send({ by: 'ops@example.test' });
    expect(approved.status).toBe(202);
    expect(approved.body).toMatchObject({
      tenantId: created.tenantId,
      approved: true,
      by: 'ops@example.test',
    });

    const done = await settled(created.tenantId);
    expect(done.tenant).toMatchObject({ status: 'active', approvedBy: 'ops@example.test' });
    expect(stepKeys(done)).toEqual([
      'reserveQuota#1:succeeded',
      'createDatabase#1:succeeded',
      'configureDns#1:succeeded',
      'markAwaitingApproval#1:succeeded',
      '$signal:approval#1:succeeded',
      'recordApproval#1:succeeded',
      'createAdmin#1:succeeded',
      'sendWelcomeEmail#1:succeeded',
      'activate#1:succeeded',
    ]);
    // Woken by the signal: a second claim that replayed the first four steps, none executed twice.
    expect(done.run!.attempts).toBe(2);
    expect(callsOf(created.tenantId, 'createDatabase')).toHaveLength(1);
    await assertQuotaCountersConsistent();
  });

  it('streams the progress as server-sent events, resumes after Last-Event-ID, and serves the tenant page', async () => {
    const created = await create(body('pro'));
    const server = app.getHttpServer();
    // The stream ends by itself once the run has ended: its last event is `finished`.
    const text = (
      await request(server)
        .get(`/tenants/${created.tenantId}/events`)
        .buffer(true)
        .parse(sseText as never)
    ).body as string;
    const events = parseSse(text);
    expect(
      events.map((e) => `${e.id ?? '-'} ${e.event} ${e.event === 'progress' ? e.data.stage : e.data.tenant}`),
    ).toEqual([
      '1 progress quota reserved',
      '2 progress database created',
      '3 progress dns configured',
      '4 progress admin created',
      '5 progress welcome email sent',
      '6 progress active',
      '6 finished active',
    ]);
    const resumed = parseSse(
      (
        await request(server)
          .get(`/tenants/${created.tenantId}/events`)
          .set('Last-Event-ID', '4')
          .buffer(true)
          .parse(sseText as never)
      ).body as string,
    );
    expect(resumed.map((e) => `${e.id} ${e.event}`)).toEqual(['5 progress', '6 progress', '6 finished']);
    expect((await view(created.tenantId)) as unknown).toMatchObject({ progress: { stage: 'active' } });

    const page = await request(server).get(`/tenants/${created.tenantId}/page`).expect(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.text).toContain(`new EventSource('/tenants/${created.tenantId}/events')`);
    await request(server).get('/tenants/00000000-0000-4000-8000-000000000000/events').expect(404);
    const health = await request(server).get('/health').expect(200);
    expect(health.body).toMatchObject({
      status: 'ok',
      details: { durable: { status: 'up', listening: true } },
    });
  });

  it('an approval sent before the workflow waits is not lost', async () => {
    const created = await create(body('enterprise'));
    await request(app.getHttpServer()).post(`/tenants/${created.tenantId}/approve`).send({}).expect(202);
    const done = await settled(created.tenantId);
    expect(done.tenant).toMatchObject({ status: 'active', approvedBy: 'operator' });
  });
});

describe('provisioning app: rejection, timeout, cancel', () => {
  it('a rejection undoes DNS, database and quota in reverse and fails the tenant', async () => {
    const created = await create(body('enterprise'));
    await waitFor(created.tenantId, (v) => v.tenant.status === 'awaiting_approval');
    await request(app.getHttpServer())
      .post(`/tenants/${created.tenantId}/reject`)
      .send({ by: 'risk@example.test', reason: 'no signed contract' })
      .expect(202);

    const done = await settled(created.tenantId);
    expect(done.tenant.status).toBe('failed');
    expect(done.tenant.failureReason).toBe(
      'ApprovalRejectedError: Rejected by risk@example.test: no signed contract.',
    );
    expect(done.run).toMatchObject({ status: 'failed', error: { name: 'ApprovalRejectedError' } });
    expect(stepKeys(done)).toEqual([
      'reserveQuota#1:succeeded',
      'createDatabase#1:succeeded',
      'configureDns#1:succeeded',
      'markAwaitingApproval#1:succeeded',
      '$signal:approval#1:succeeded',
      'recordFailure#1:succeeded',
      '$undo:configureDns#1#1:succeeded',
      '$undo:createDatabase#1#1:succeeded',
      '$undo:reserveQuota#1#1:succeeded',
    ]);
    expect(callsOf(created.tenantId).map((c) => `${c.operation}:${c.outcome}`)).toEqual([
      'createDatabase:created',
      'createDnsRecord:created',
      'deleteDnsRecord:deleted',
      'deleteDatabase:deleted',
    ]);
    const resources = provider.getResources(created.tenantId);
    expect(resources.databases.every((d) => d.deletedAt !== null)).toBe(true);
    expect(resources.dnsRecords.every((d) => d.deletedAt !== null)).toBe(true);
    expect(await reservation(created.tenantId)).toEqual({ released: true });
    await assertQuotaCountersConsistent();

    // Settled: approving or rejecting again is a conflict.
    const again = await request(app.getHttpServer()).post(`/tenants/${created.tenantId}/approve`).send({});
    expect(again.status).toBe(409);
    expect(again.body.message).toMatch(/is failed/);
  });

  it('no decision within APPROVAL_TIMEOUT is a rejection', async () => {
    const started = Date.now();
    const created = await create(body('enterprise'));
    const done = await settled(created.tenantId, APPROVAL_TIMEOUT_MS + 15_000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(APPROVAL_TIMEOUT_MS - 100);
    expect(done.tenant.status).toBe('failed');
    expect(done.tenant.failureReason).toMatch(/^ApprovalTimeoutError: Not approved within/);
    expect(stepKeys(done)).toContain('$undo:createDatabase#1#1:succeeded');
    expect(await reservation(created.tenantId)).toEqual({ released: true });
  });

  it('cancelling a tenant that waits for approval compensates and ends it cancelled', async () => {
    const created = await create(body('enterprise'));
    await waitFor(created.tenantId, (v) => v.run?.status === 'waiting');
    const res = await request(app.getHttpServer())
      .post(`/tenants/${created.tenantId}/cancel`)
      .send({ reason: 'customer changed their mind' });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ tenantId: created.tenantId, compensating: true });

    const done = await settled(created.tenantId);
    expect(done.tenant).toMatchObject({
      status: 'cancelled',
      failureReason: 'Cancelled: customer changed their mind',
    });
    expect(done.run).toMatchObject({ status: 'cancelled', error: { name: 'RunCancelledError' } });
    expect(stepKeys(done)).toEqual([
      'reserveQuota#1:succeeded',
      'createDatabase#1:succeeded',
      'configureDns#1:succeeded',
      'markAwaitingApproval#1:succeeded',
      '$signal:approval#1:waiting',
      '$undo:configureDns#1#1:succeeded',
      '$undo:createDatabase#1#1:succeeded',
      '$undo:reserveQuota#1#1:succeeded',
    ]);
    expect(provider.getResources(created.tenantId).databases[0].deletedAt).not.toBeNull();
    expect(await reservation(created.tenantId)).toEqual({ released: true });
    await assertQuotaCountersConsistent();

    const again = await request(app.getHttpServer()).post(`/tenants/${created.tenantId}/cancel`).send({});
    expect(again.status).toBe(409);
  });

  it('a cancel at any point of the provisioning settles the tenant and undoes every completed step', async () => {
    // Cancels land while a step runs, while a checkpoint commits, during the approval wait or after the
    // end (409). Whatever the point, the tenant settles, its quota is released and every resource whose
    // step completed is deleted. (A create the cancel aborted in flight may have happened at the
    // provider; the library compensates only completed steps, so such a resource can remain: that is
    // the one leak allowed here, and it is reported, see the sample app section of the README.)
    const cancels: { id: string; status: number }[] = [];
    for (let i = 0; i < 40; i++) {
      const created = await create(body(i % 3 === 0 ? 'enterprise' : 'pro'));
      await new Promise((resolve) => setTimeout(resolve, (i * 7) % 45));
      const res = await request(app.getHttpServer()).post(`/tenants/${created.tenantId}/cancel`).send({});
      expect([202, 409]).toContain(res.status);
      cancels.push({ id: created.tenantId, status: res.status });
    }
    const stuck: string[] = [];
    for (const { id, status } of cancels) {
      const done = await settled(id, 60_000).catch(() => undefined);
      if (!done) {
        const v = await view(id);
        stuck.push(`${id}: tenant ${v.tenant.status}, run ${v.run?.status}, steps ${stepKeys(v).join(' ')}`);
        continue;
      }
      expect(done.tenant.status).toBe(status === 202 ? 'cancelled' : 'active');
      if (status !== 202) continue;
      expect(done.run!.status).toBe('cancelled');
      const completed = (name: string) => done.steps.some((s) => s.name === name && s.status === 'succeeded');
      const live = (items: { deletedAt: string | null }[]) =>
        items.filter((r) => r.deletedAt === null).length;
      const resources = provider.getResources(id);
      if (completed('createDatabase')) expect(live(resources.databases)).toBe(0);
      if (completed('configureDns')) expect(live(resources.dnsRecords)).toBe(0);
      const held = await reservation(id);
      if (held) expect(held).toEqual({ released: true });
    }
    expect(stuck).toEqual([]);
    await assertQuotaCountersConsistent();
  });

  it('an active tenant cannot be cancelled; a non-enterprise one needs no approval', async () => {
    const created = await create(body('free'));
    await settled(created.tenantId);
    const cancel = await request(app.getHttpServer()).post(`/tenants/${created.tenantId}/cancel`).send({});
    expect(cancel.status).toBe(409);
    expect(cancel.body.message).toMatch(/is active/);
    const approve = await request(app.getHttpServer()).post(`/tenants/${created.tenantId}/approve`).send({});
    expect(approve.status).toBe(409);
    expect(approve.body.message).toMatch(/only enterprise tenants need approval/);
  });
});

describe('provisioning app: the provider fails', () => {
  it('an outage of the provider is retried with backoff until the database is created', async () => {
    const payload = body('pro', { name: 'Outage Inc' });
    provider.addFault({ operation: 'createDatabase', tenantName: 'Outage Inc', status: 503, times: 3 });
    // And the DNS provider loses one response after creating the record: the retry must get that record.
    provider.addFault({
      operation: 'createDnsRecord',
      tenantName: 'Outage Inc',
      status: 503,
      times: 1,
      when: 'after',
    });
    const created = await create(payload);
    const done = await settled(created.tenantId);
    expect(done.tenant.status).toBe('active');
    const step = (name: string) => done.steps.find((s) => s.name === name)!;
    // Succeeded at the fourth attempt; the record keeps the last failed attempt's error.
    expect(step('createDatabase')).toMatchObject({
      status: 'succeeded',
      attempts: 4,
      error: { name: 'ProviderUnavailableError' },
    });
    expect(step('configureDns')).toMatchObject({ status: 'succeeded', attempts: 2 });

    expect(callsOf(created.tenantId, 'createDatabase').map((c) => c.outcome)).toEqual([
      'injected_failure',
      'injected_failure',
      'injected_failure',
      'created',
    ]);
    expect(callsOf(created.tenantId, 'createDnsRecord').map((c) => c.outcome)).toEqual([
      'created+lost_response',
      'replayed',
    ]);
    // Every attempt carried the same key, so the provider holds exactly one of each.
    const keys = new Set(callsOf(created.tenantId, 'createDatabase').map((c) => c.idempotencyKey));
    expect(keys.size).toBe(1);
    const resources = provider.getResources(created.tenantId);
    expect(resources.databases).toHaveLength(1);
    expect(resources.dnsRecords).toHaveLength(1);
    expect(done.tenant.dnsName).toBe(resources.dnsRecords[0].fqdn);
  });

  it('a permanent refusal is not retried: the completed steps are undone and the tenant fails', async () => {
    provider.addFault({ operation: 'createDnsRecord', tenantName: 'Doomed Ltd', status: 422 });
    const created = await create(body('pro', { name: 'Doomed Ltd' }));
    const done = await settled(created.tenantId);
    expect(done.tenant.status).toBe('failed');
    expect(done.tenant.failureReason).toMatch(/^ProviderRejectedError: POST \/dns-records answered 422/);
    expect(done.run).toMatchObject({ status: 'failed', error: { name: 'ProviderRejectedError' } });
    expect(stepKeys(done)).toEqual([
      'reserveQuota#1:succeeded',
      'createDatabase#1:succeeded',
      'configureDns#1:failed',
      'recordFailure#1:succeeded',
      '$undo:createDatabase#1#1:succeeded',
      '$undo:reserveQuota#1#1:succeeded',
    ]);
    expect(done.steps.find((s) => s.name === 'configureDns')!.attempts).toBe(1);
    expect(callsOf(created.tenantId).map((c) => `${c.operation}:${c.outcome}`)).toEqual([
      'createDatabase:created',
      'createDnsRecord:rejected',
      'deleteDatabase:deleted',
    ]);
    expect(await reservation(created.tenantId)).toEqual({ released: true });
    await assertQuotaCountersConsistent();
  });

  it('a database created after an outage is still deleted when a later step is refused', async () => {
    provider.addFault({
      operation: 'createDatabase',
      tenantName: 'Retried Then Doomed',
      status: 503,
      times: 1,
    });
    provider.addFault({ operation: 'createDnsRecord', tenantName: 'Retried Then Doomed', status: 422 });
    const created = await create(body('pro', { name: 'Retried Then Doomed' }));
    const done = await settled(created.tenantId);
    expect(done.tenant.status).toBe('failed');
    expect(done.steps.find((s) => s.name === 'createDatabase')).toMatchObject({
      status: 'succeeded',
      attempts: 2,
    });
    expect(stepKeys(done)).toEqual([
      'reserveQuota#1:succeeded',
      'createDatabase#1:succeeded',
      'configureDns#1:failed',
      'recordFailure#1:succeeded',
      '$undo:createDatabase#1#1:succeeded',
      '$undo:reserveQuota#1#1:succeeded',
    ]);
    expect(provider.getResources(created.tenantId).databases.map((d) => d.deletedAt !== null)).toEqual([
      true,
    ]);
  });

  it('an undo that meets an outage is retried until it gets through', async () => {
    provider.addFault({ operation: 'createDnsRecord', tenantName: 'Flaky Undo', status: 422 });
    provider.addFault({ operation: 'deleteDatabase', tenantName: 'Flaky Undo', status: 503, times: 2 });
    const created = await create(body('free', { name: 'Flaky Undo' }));
    const done = await settled(created.tenantId);
    expect(done.tenant.status).toBe('failed');
    expect(done.steps.find((s) => s.key === '$undo:createDatabase#1#1')).toMatchObject({
      status: 'succeeded',
      attempts: 3,
    });
    expect(provider.getResources(created.tenantId).databases[0].deletedAt).not.toBeNull();
  });

  it('no quota left: the tenant fails at once and nothing is created at the provider', async () => {
    await sql(ds, `INSERT INTO plan_quotas (plan, region, capacity) VALUES ('pro', 'ap-full-1', 0)`);
    const created = await create(body('pro', { region: 'ap-full-1' }));
    const done = await settled(created.tenantId);
    expect(done.tenant.status).toBe('failed');
    expect(done.tenant.failureReason).toBe(
      'QuotaExceededError: No pro capacity left in ap-full-1 (capacity 0).',
    );
    expect(stepKeys(done)).toEqual(['reserveQuota#1:failed', 'recordFailure#1:succeeded']);
    expect(callsOf(created.tenantId)).toEqual([]);
    expect(await reservation(created.tenantId)).toBeUndefined();
  });
});

describe('provisioning app: idempotent create', () => {
  it('the same request with the same Idempotency-Key creates nothing new', async () => {
    const payload = body('pro');
    const first = await create(payload, 'order-4711');
    const second = await request(app.getHttpServer())
      .post('/tenants')
      .set('Idempotency-Key', 'order-4711')
      .send(payload);
    expect(second.status).toBe(202);
    expect(second.headers['idempotent-replayed']).toBe('true');
    expect(second.body).toMatchObject({ tenantId: first.tenantId, runId: first.runId, created: false });

    const [counts] = await sql<{ tenants: number }>(
      ds,
      `SELECT count(*)::int AS tenants FROM tenants WHERE idempotency_key = 'order-4711'`,
    );
    expect(counts.tenants).toBe(1);
    await settled(first.tenantId);
    expect(callsOf(first.tenantId, 'createDatabase')).toHaveLength(1);
  });

  it('concurrent requests with one key create one tenant and one run', async () => {
    const payload = body('free');
    const responses = await Promise.all(
      Array.from({ length: 6 }, () =>
        request(app.getHttpServer()).post('/tenants').set('Idempotency-Key', 'burst-1').send(payload),
      ),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(6).fill(202));
    const ids = new Set(responses.map((r) => r.body.tenantId));
    expect(ids.size).toBe(1);
    expect(responses.filter((r) => r.body.created === true)).toHaveLength(1);
    const [tenantId] = [...ids];
    await settled(tenantId);
    const runs = await request(app.getHttpServer()).get('/runs?limit=1000').expect(200);
    expect(runs.body.runs.filter((r: { tenantId: string }) => r.tenantId === tenantId)).toHaveLength(1);
  });

  it('the same key with another request is a 422; a bad key is a 400', async () => {
    await create(body('free'), 'reused-key');
    const other = await request(app.getHttpServer())
      .post('/tenants')
      .set('Idempotency-Key', 'reused-key')
      .send(body('pro'));
    expect(other.status).toBe(422);
    expect(other.body.message).toMatch(/already used for another request/);

    const long = await request(app.getHttpServer())
      .post('/tenants')
      .set('Idempotency-Key', 'x'.repeat(201))
      .send(body('free'));
    expect(long.status).toBe(400);
    expect(long.body.message).toMatch(/Idempotency-Key/);
  });
});

describe('provisioning app: bad input', () => {
  const valid = { name: 'Valid', plan: 'free', region: 'eu-west-1', adminEmail: 'a@example.test' };

  it.each([
    ['a missing name', { ...valid, name: undefined }, /name must be/],
    ['an empty name', { ...valid, name: '   ' }, /name must be longer/],
    ['a name too long', { ...valid, name: 'n'.repeat(101) }, /name must be shorter/],
    ['an unknown plan', { ...valid, plan: 'gold' }, /plan must be one of: free, pro, enterprise/],
    ['a bad region', { ...valid, region: 'Europe' }, /region must look like eu-west-1/],
    ['a bad email', { ...valid, adminEmail: 'not-an-email' }, /adminEmail must be an email address/],
    ['a number for a string', { ...valid, name: 42 }, /name must be a string/],
    ['an unknown field', { ...valid, isAdmin: true }, /property isAdmin should not exist/],
  ])('POST /tenants with %s is a 400', async (_what, payload, message) => {
    const res = await request(app.getHttpServer()).post('/tenants').send(payload);
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body.message)).toMatch(message);
  });

  it('malformed JSON is a 400 and creates nothing', async () => {
    const [before] = await sql<{ n: number }>(ds, 'SELECT count(*)::int AS n FROM tenants');
    const res = await request(app.getHttpServer())
      .post('/tenants')
      .set('content-type', 'application/json')
      .send('{"name": "oops",');
    expect(res.status).toBe(400);
    const [after] = await sql<{ n: number }>(ds, 'SELECT count(*)::int AS n FROM tenants');
    expect(after.n).toBe(before.n);
  });

  it('bad ids, unknown tenants, bad filters and bad decision bodies', async () => {
    const server = app.getHttpServer();
    expect((await request(server).get('/tenants/not-a-uuid')).status).toBe(400);
    const missing = await request(server).get('/tenants/00000000-0000-4000-8000-000000000000');
    expect(missing.status).toBe(404);
    expect(
      (await request(server).post('/tenants/00000000-0000-4000-8000-000000000000/approve').send({})).status,
    ).toBe(404);
    expect(
      (await request(server).post('/tenants/00000000-0000-4000-8000-000000000000/cancel').send({})).status,
    ).toBe(404);
    const badStatus = await request(server).get('/runs?status=bogus');
    expect(badStatus.status).toBe(400);
    expect(JSON.stringify(badStatus.body.message)).toMatch(/status must be a comma-separated list/);
    expect((await request(server).get('/runs?limit=0')).status).toBe(400);
    expect((await request(server).get('/runs?after=garbage')).status).toBe(400); // the library's InvalidArgumentError
    expect((await request(server).get('/tenants?status=sleeping')).status).toBe(400);
    expect((await request(server).get('/tenants?limit=abc')).status).toBe(400);
    const created = await create(body('enterprise'));
    const badDecision = await request(server).post(`/tenants/${created.tenantId}/approve`).send({ by: 7 });
    expect(badDecision.status).toBe(400);
    const badCancel = await request(server)
      .post(`/tenants/${created.tenantId}/cancel`)
      .send({ reason: ['x'] });
    expect(badCancel.status).toBe(400);
    await waitFor(created.tenantId, (v) => v.run?.status === 'waiting');
    await request(server).post(`/tenants/${created.tenantId}/reject`).send({}).expect(202);
    await settled(created.tenantId);
  });
});

describe('provisioning app: operators', () => {
  it('GET /runs lists runs by status, newest first, with a cursor', async () => {
    const server = app.getHttpServer();
    const succeeded = await request(server).get('/runs?status=succeeded&limit=2').expect(200);
    expect(succeeded.body.runs).toHaveLength(2);
    expect(succeeded.body.runs.every((r: { status: string }) => r.status === 'succeeded')).toBe(true);
    expect(succeeded.body.runs[0]).toMatchObject({
      workflow: 'provisionTenant',
      version: '3',
      tenantId: expect.any(String),
    });
    expect(succeeded.body.next).toEqual(expect.any(String));
    const next = await request(server)
      .get(`/runs?status=succeeded&limit=2&after=${encodeURIComponent(succeeded.body.next)}`)
      .expect(200);
    const firstIds = succeeded.body.runs.map((r: { id: string }) => r.id);
    expect(next.body.runs.some((r: { id: string }) => firstIds.includes(r.id))).toBe(false);

    const ended = await request(server).get('/runs?status=failed,cancelled').expect(200);
    expect(new Set(ended.body.runs.map((r: { status: string }) => r.status))).toEqual(
      new Set(['failed', 'cancelled']),
    );

    const tenants = await request(server).get('/tenants?status=active&limit=5').expect(200);
    expect(tenants.body.tenants.length).toBeGreaterThan(0);
    expect(tenants.body.tenants.every((t: { status: string }) => t.status === 'active')).toBe(true);
  });

  it('GET /fake-provider/calls shows what the provider saw for a tenant', async () => {
    const created = await create(body('free'));
    await settled(created.tenantId);
    const res = await request(app.getHttpServer())
      .get(`/fake-provider/calls?tenantId=${created.tenantId}`)
      .expect(200);
    expect(res.body.calls.map((c: ProviderCall) => c.operation)).toEqual([
      'createDatabase',
      'createDnsRecord',
      'sendEmail',
    ]);
    const resources = await request(app.getHttpServer())
      .get(`/fake-provider/resources?tenantId=${created.tenantId}`)
      .expect(200);
    expect(resources.body.databases).toHaveLength(1);
    expect(resources.body.emails).toHaveLength(1);
  });
});
