import { INestApplicationContext, Injectable, Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { Durable, DurableClient, HistoryLimitError, LimitExceededError, Step, Workflow } from 'nest-durable';
import { createTestDatabase, TestDatabase } from './support/database';
import { createDurableApp } from './support/durable-app';
import { dataSourceOf, requeueRun, sql, waitUntil } from './support/helpers';

@Injectable()
class Busy {
  executions = 0;

  @Step() async tick(i: number): Promise<number> {
    this.executions++;
    return i;
  }

  @Step() async blob(size: number): Promise<string> {
    return 'x'.repeat(size);
  }

  @Workflow() async manySteps(n: number): Promise<number> {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += await this.tick(i);
    return sum;
  }

  @Workflow() async blobs(count: number, size: number): Promise<number> {
    for (let i = 0; i < count; i++) await this.blob(size);
    return count;
  }

  @Workflow() async inbox(): Promise<unknown> {
    return Durable.waitForSignal('never-sent');
  }

  @Workflow() async mismatch(version: number): Promise<number> {
    if (version === 1) await this.tick(1);
    else await this.blob(1);
    return version;
  }
}

/** The recorded cause of a run's failure (handle.result() rejects with WorkflowFailedError). */
async function causeOf(result: Promise<unknown>): Promise<Error> {
  const failure = await result.then(
    () => undefined,
    (error: { cause?: Error }) => error,
  );
  if (!failure?.cause) throw new Error('the run did not fail');
  return failure.cause;
}

describe('history and signal limits', () => {
  let database: TestDatabase;
  let app: INestApplicationContext;
  let client: DurableClient;
  let busy: Busy;
  let ds: DataSource;

  beforeAll(async () => {
    database = await createTestDatabase();
    app = await createDurableApp({
      url: database.url,
      providers: [Busy],
      durable: {
        pollIntervalMs: 200,
        maxHistorySteps: 150,
        maxHistoryBytes: 10_000,
        maxPendingSignals: 5,
        maxPendingSignalBytes: 2_000,
        maxPayloadBytes: 5_000,
      },
    });
    client = app.get(DurableClient);
    busy = app.get(Busy);
    ds = dataSourceOf(app);
  });

  afterAll(async () => {
    await app?.close();
    await database?.drop();
  });

  it('fails the step that would cross maxHistorySteps, with a clear error', async () => {
    const handle = await client.start('manySteps', [200], { id: 'many-200' });
    const error = await causeOf(handle.result({ timeout: '60s' }));
    expect(error).toMatchObject({ name: HistoryLimitError.name, code: 'DURABLE_HISTORY_LIMIT' });
    expect(error.message).toMatch(/step "tick#151" would record more than 150 steps.*maxHistorySteps/);
    const [row] = await sql<{ n: number }>(
      ds,
      `SELECT count(*)::int AS n FROM durable.steps WHERE run_id = 'many-200' AND status = 'succeeded'`,
    );
    expect(row.n).toBe(150);
  });

  it('fails the step whose output would bring the history over maxHistoryBytes', async () => {
    const handle = await client.start('blobs', [5, 3_000], { id: 'blobs-5' });
    const error = await causeOf(handle.result({ timeout: '60s' }));
    expect(error).toMatchObject({ name: HistoryLimitError.name });
    expect(error.message).toMatch(/output of step "blob#4" would bring the run's history over 10000 bytes/);
  });

  it('replays a history too large to travel inside the claim, read on its own', async () => {
    const handle = await client.start('manySteps', [120], { id: 'many-120' });
    await expect(handle.result({ timeout: '60s' })).resolves.toBe((119 * 120) / 2);
    const before = busy.executions;
    await requeueRun(ds, 'many-120');
    await waitUntil(
      'the replay to finish',
      async () => {
        const run = await client.status('many-120');
        return run!.status === 'succeeded' && run!.attempts === 2 ? true : undefined;
      },
      60_000,
    );
    expect(busy.executions).toBe(before); // 120 recorded steps replayed, none executed again
  });

  it('refuses a signal past maxPendingSignals, and one past maxPendingSignalBytes; nothing is stored', async () => {
    await client.start('inbox', [], { id: 'inbox-1' });
    for (let i = 0; i < 5; i++) await client.signal('inbox-1', `s${i}`, { i });
    await expect(client.signal('inbox-1', 'flood', 'x')).rejects.toBeInstanceOf(LimitExceededError);
    await client.start('inbox', [], { id: 'inbox-2' });
    await client.signal('inbox-2', 'big', 'x'.repeat(1_500));
    const sent = client.signal('inbox-2', 'big', 'x'.repeat(1_000));
    await expect(sent).rejects.toBeInstanceOf(LimitExceededError);
    await expect(sent).rejects.toThrow(/maxPendingSignalBytes/);
    const counts = await sql<{ run_id: string; n: number }>(
      ds,
      `SELECT run_id, count(*)::int AS n FROM durable.signals GROUP BY 1 ORDER BY 1`,
    );
    expect(counts).toEqual([
      { run_id: 'inbox-1', n: 5 },
      { run_id: 'inbox-2', n: 1 },
    ]);
  });

  it('logs a replay mismatch with the run id, the expected and the actual step', async () => {
    const logged = jest.spyOn(Logger.prototype, 'error');
    try {
      const handle = await client.start('mismatch', [1], { id: 'mm-1' });
      await handle.result({ timeout: '30s' });
      // Same id, other code path on replay: the history expects tick#1, the code calls blob#1.
      await sql(ds, `UPDATE durable.runs SET input = '[2]'::jsonb WHERE id = 'mm-1'`);
      await requeueRun(ds, 'mm-1');
      await waitUntil(
        'the mismatch to fail the run',
        async () => ((await client.status('mm-1'))!.status === 'failed' ? true : undefined),
        30_000,
      );
      // The line is written from the run's outcome event, just after the failure is recorded.
      const line = await waitUntil(
        'the mismatch to be logged',
        async () => logged.mock.calls.map((call) => String(call[0])).find((text) => /"mm-1"/.test(text)),
        30_000,
      );
      expect(line).toMatch(/"mm-1".*expected "tick#1", got "blob#1"/);
    } finally {
      logged.mockRestore();
    }
  });
});
