import { INestApplicationContext, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { DurableClient, Step, Workflow } from 'nest-durable';
import { createTestDatabase, TestDatabase } from './support/database';
import { createDurableApp } from './support/durable-app';
import { dataSourceOf, sql, waitUntil } from './support/helpers';

@Injectable()
class Jobs {
  @Step() async work(x: number): Promise<number> {
    return x + 1;
  }

  @Workflow() async job(x: number): Promise<number> {
    return this.work(x);
  }

  @Workflow({ maxRecoveryAttempts: 2 }) async fragileJob(x: number): Promise<number> {
    return this.work(x);
  }
}

/**
 * Runs the database says this executor owns while nothing executes them, and runs that keep being
 * claimed without progress: neither may stay stuck.
 */
describe('liveness', () => {
  const EXECUTOR = 'liveness-executor';
  let database: TestDatabase;
  let app: INestApplicationContext;
  let client: DurableClient;
  let ds: DataSource;

  const status = async (id: string) => (await client.status(id))!;
  const insertRun = (id: string, workflow: string, columns: string, values: string, params: unknown[]) =>
    sql(
      ds,
      `INSERT INTO durable.runs (id, workflow, version, input, ${columns}) VALUES ($1, $2, '1', '[41]'::jsonb, ${values})`,
      [id, workflow, ...params],
    );

  beforeAll(async () => {
    database = await createTestDatabase();
    app = await createDurableApp({
      url: database.url,
      providers: [Jobs],
      durable: { executorId: EXECUTOR, pollIntervalMs: 100, maxRecoveryAttempts: 3 },
    });
    client = app.get(DurableClient);
    ds = dataSourceOf(app);
  });

  afterAll(async () => {
    await app?.close();
    await database?.drop();
  });

  it('releases and executes a run owned by this live executor that nothing here executes', async () => {
    // As a claim whose reply was lost leaves it: running, ours, current heartbeat, no execution.
    await insertRun(
      'stranded-1',
      'job',
      'status, executor, epoch, attempts, claimed_at',
      `'running', $3, 1, 1, now()`,
      [EXECUTOR],
    );
    await waitUntil(
      'the stranded run to finish',
      async () => ((await status('stranded-1')).status === 'succeeded' ? true : undefined),
      30_000,
    );
    expect(await status('stranded-1')).toMatchObject({ output: 42, attempts: 2 });
  });

  it('sets aside a run claimed past maxRecoveryAttempts without progress; resume runs it', async () => {
    // Three claims already ended without progress (its process died each time): the fourth sets it aside.
    await insertRun('poison-1', 'job', 'status, stalls, attempts', `'pending', 3, 3`, []);
    await waitUntil(
      'the run to be set aside',
      async () => ((await status('poison-1')).status === 'failed' ? true : undefined),
      30_000,
    );
    const run = await status('poison-1');
    expect(run.error).toMatchObject({ name: 'RunSetAsideError', code: 'DURABLE_RUN_SET_ASIDE' });
    expect(run.error!.message).toMatch(/claimed 3 times in a row without progress/);
    expect(run.steps).toEqual([]);
    const listed = await client.list({ status: 'failed' });
    expect(listed.runs.map((r) => r.id)).toContain('poison-1');

    await client.resume('poison-1');
    await expect(client.handle('poison-1').result({ timeout: '30s' })).resolves.toBe(42);
  });

  it('honours a per-workflow maxRecoveryAttempts', async () => {
    await insertRun('poison-2', 'fragileJob', 'status, stalls, attempts', `'pending', 2, 2`, []);
    await insertRun('healthy-2', 'job', 'status, stalls, attempts', `'pending', 2, 2`, []);
    await waitUntil(
      'both runs to end',
      async () =>
        (await status('poison-2')).status === 'failed' && (await status('healthy-2')).status === 'succeeded'
          ? true
          : undefined,
      30_000,
    );
    expect((await status('poison-2')).error).toMatchObject({ code: 'DURABLE_RUN_SET_ASIDE' });
  });

  it('a run that made progress is not counted as stalled any more', async () => {
    await insertRun('progress-1', 'job', 'status, stalls, attempts', `'pending', 2, 2`, []);
    await waitUntil(
      'the run to finish',
      async () => ((await status('progress-1')).status === 'succeeded' ? true : undefined),
      30_000,
    );
    const [row] = await sql<{ stalls: number }>(
      ds,
      `SELECT stalls FROM durable.runs WHERE id = 'progress-1'`,
    );
    expect(row.stalls).toBe(0);
  });
});
