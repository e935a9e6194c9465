/**
 * The sample app as an operator meets it: a run with its steps over HTTP, the dashboard mounted behind
 * its demo guard, and text PostgreSQL cannot store answered with a 400 (nothing reaches the database,
 * no SQL in the log).
 */
import { ConsoleLogger, ExecutionContext, INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { DurableClient } from 'nest-durable';
import { AppModule } from '../apps/provisioning/src/app.module';
import { configureApp } from '../apps/provisioning/src/app.setup';
import { DemoDashboardGuard } from '../apps/provisioning/src/dashboard.guard';
import { createTestDatabase, TestDatabase } from './support/database';

jest.setTimeout(60_000);

const ENV = {
  APPROVAL_TIMEOUT: '10s',
  FAKE_PROVIDER_LATENCY_MS: '1-5',
  FAKE_PROVIDER_FAILURE_RATE: '0',
  DURABLE_POLL_INTERVAL_MS: '100',
  EXECUTOR_ID: `provisioning-operate-${process.pid}`,
  PROVIDER_URL: '',
};

/** Keeps every line the app logs (errors included), so a test can check what reached the log. */
class CapturingLogger extends ConsoleLogger {
  readonly lines: string[] = [];
  protected override printMessages(messages: unknown[], context?: string, logLevel?: string): void {
    for (const message of messages)
      this.lines.push(`${logLevel} ${context} ${String((message as Error)?.stack ?? message)}`);
  }
}

let database: TestDatabase;
let app: INestApplication;
const logger = new CapturingLogger();
const savedEnv: Record<string, string | undefined> = {};

beforeAll(async () => {
  database = await createTestDatabase();
  for (const [name, value] of Object.entries({ ...ENV, DATABASE_URL: database.url })) {
    savedEnv[name] = process.env[name];
    process.env[name] = value;
  }
  const moduleRef = await Test.createTestingModule({ imports: [AppModule] })
    .setLogger(logger)
    .compile();
  app = configureApp(moduleRef.createNestApplication({ logger }), { shutdownHooks: false });
  await app.init();
});

afterAll(async () => {
  await app?.close();
  await database?.drop();
  for (const [name, value] of Object.entries(savedEnv)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

const http = () => request(app.getHttpServer());

it('GET /runs/:id answers the run with its steps; an unknown id is a 404', async () => {
  const created = await http()
    .post('/tenants')
    .send({ name: 'Runs Inc', plan: 'free', region: 'eu-west-1', adminEmail: 'a@runs.test' })
    .expect(202);
  await app.get(DurableClient).handle(created.body.runId).result({ timeout: '30s' });
  const run = (
    await http()
      .get(`/runs/${encodeURIComponent(created.body.runId)}`)
      .expect(200)
  ).body;
  expect(run).toMatchObject({ id: created.body.runId, workflow: 'provisionTenant', status: 'succeeded' });
  expect(run.steps.map((step: { key: string }) => step.key)).toEqual(
    expect.arrayContaining(['reserveQuota#1', 'createDatabase#1', 'activate#1']),
  );
  expect(run.steps.every((step: { durationMs: unknown }) => typeof step.durationMs === 'number')).toBe(true);
  await http().get('/runs/no-such-run').expect(404);
});

it('text PostgreSQL cannot store is a 400 naming the field, in a body, a query or a path, with no SQL logged', async () => {
  const before = logger.lines.length;
  const nul = await http()
    .post('/tenants')
    .send({ name: 'Acme\u0000', plan: 'free', region: 'eu-west-1', adminEmail: 'a@acme.test' })
    .expect(400);
  expect(nul.body.message).toContain('name');
  const surrogate = await http()
    .post('/tenants/00000000-0000-4000-8000-000000000000/cancel')
    .send({ reason: 'x\ud800' });
  expect(surrogate.status).toBe(400);
  await http().get('/runs').query({ workflow: 'a\u0000b' }).expect(400);
  await http().get('/runs/bad%00id').expect(400);
  await http().get('/durable/api/runs').query({ errorText: 'x\u0000' }).expect(400);
  const logged = logger.lines.slice(before).join('\n');
  expect(logged).not.toMatch(/INSERT|SELECT|QueryFailedError|invalid byte sequence/);
  expect(await http().get('/tenants').expect(200)).toBeDefined();
});

it('mounts the dashboard at /durable behind the demo guard (this machine only)', async () => {
  const page = await http().get('/durable').expect(200);
  expect(page.text).toContain('provisionTenant');
  await http().get('/durable/api/counts').expect(200);
  const context = (remoteAddress: string) =>
    ({
      switchToHttp: () => ({ getRequest: () => ({ socket: { remoteAddress } }) }),
    }) as unknown as ExecutionContext;
  const guard = new DemoDashboardGuard();
  expect(['127.0.0.1', '::1', '::ffff:127.0.0.1'].map((a) => guard.canActivate(context(a)))).toEqual([
    true,
    true,
    true,
  ]);
  expect(['10.0.0.5', '192.168.1.2', '::ffff:10.0.0.5'].map((a) => guard.canActivate(context(a)))).toEqual([
    false,
    false,
    false,
  ]);
});
