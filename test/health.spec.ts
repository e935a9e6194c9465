/**
 * The @nestjs/terminus indicator against real faults: up on a healthy replica; down when the backlog is
 * older than allowed, when the heartbeat is older than allowed, and while the LISTEN connection is
 * down (its backend terminated, and the database refusing new connections so it cannot come back);
 * up again once it reconnects.
 */
import { INestApplicationContext, Injectable, ServiceUnavailableException } from '@nestjs/common';
import { HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { Client } from 'pg';
import {
  DurableClient,
  DurableHealthDetails,
  DurableHealthIndicator,
  DurableHealthModule,
  Step,
  Workflow,
} from 'nest-durable';
import { createTestDatabase, TestDatabase } from './support/database';
import { createDurableApp } from './support/durable-app';
import { sleep, waitUntil } from './support/helpers';

@Injectable()
class HealthFlows {
  @Workflow('healthy')
  async healthy(n: number) {
    return this.double(n);
  }

  @Step()
  async double(n: number) {
    return n * 2;
  }
}

describe('DurableHealthIndicator (@nestjs/terminus)', () => {
  let db: TestDatabase;
  let app: INestApplicationContext;
  let admin: Client;

  beforeAll(async () => {
    db = await createTestDatabase();
    app = await createDurableApp({
      url: db.url,
      providers: [HealthFlows],
      imports: [TerminusModule, DurableHealthModule],
      durable: { heartbeatMs: 200, leaseMs: 5_000, pollIntervalMs: 200 },
    });
    admin = new Client({ connectionString: process.env.DURABLE_TEST_BASE_URL });
    await admin.connect();
  });

  afterAll(async () => {
    await admin?.query(`ALTER DATABASE "${db.name}" WITH ALLOW_CONNECTIONS true`).catch(() => undefined);
    await admin?.end();
    await app?.close();
    await db?.drop();
  });

  const indicator = () => app.get(DurableHealthIndicator);
  const check = (options = {}) =>
    app.get(HealthCheckService).check([() => indicator().isHealthy('durable', options)]);

  it('is up on a healthy replica, through HealthCheckService', async () => {
    expect(
      await app
        .get(DurableClient)
        .start('healthy', [21])
        .then((h) => h.result()),
    ).toBe(42);
    const result = await check();
    expect(result.status).toBe('ok');
    expect(result.details.durable).toMatchObject({
      status: 'up',
      database: 'reachable',
      listening: true,
      backlog: { due: 0, oldestAgeSeconds: 0 },
    });
    expect(result.details.durable.heartbeatAgeMs).toEqual(expect.any(Number));
  });

  it('is down when the oldest due run waited longer than allowed, and says why', async () => {
    await app.get(DurableClient).start('notServedHere', []);
    await sleep(1_100); // the check reuses a queue sample up to a second old

    const error = await check({ maxBacklogAge: 10 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ServiceUnavailableException);
    const body = (error as ServiceUnavailableException).getResponse() as {
      details: Record<string, DurableHealthDetails & { status: string }>;
    };
    expect(body.details.durable.status).toBe('down');
    expect(body.details.durable.backlog?.due).toBe(1);
    expect(body.details.durable.problems).toEqual([expect.stringMatching(/^oldest due run waiting/)]);
    // A generous threshold: up.
    expect((await check({ maxBacklogAge: '1h', maxHeartbeatAge: '1m' })).status).toBe('ok');
  });

  it('is down when the heartbeat is older than allowed', async () => {
    const result = await indicator().isHealthy('durable', { maxHeartbeatAge: 0, maxBacklogAge: '1h' });
    expect(result.durable.status).toBe('down');
    expect(result.durable.problems).toEqual([expect.stringMatching(/^heartbeat older than 0 ms/)]);
  });

  it('is down while the LISTEN connection is down, and up once it is back', async () => {
    await admin.query(`ALTER DATABASE "${db.name}" WITH ALLOW_CONNECTIONS false`);
    const { rows } = await admin.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'LISTEN%'`,
      [db.name],
    );
    expect(rows).toHaveLength(1);
    const down = await waitUntil(
      'the indicator to report the LISTEN connection down',
      async () => {
        const result = await indicator().isHealthy('durable', { maxBacklogAge: '1h', maxHeartbeatAge: '1m' });
        return result.durable.listening ? undefined : result;
      },
      15_000,
    );
    expect(down.durable.status).toBe('down');
    expect(down.durable.problems).toContain('LISTEN connection down (reconnecting)');
    await admin.query(`ALTER DATABASE "${db.name}" WITH ALLOW_CONNECTIONS true`);
    await waitUntil(
      'the indicator to be up again',
      async () =>
        (await indicator().isHealthy('durable', { maxBacklogAge: '1h', maxHeartbeatAge: '1m' })).durable
          .status === 'up'
          ? true
          : undefined,
      15_000,
    );
  });
});
