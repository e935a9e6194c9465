/**
 * "dbhiccup": every backend of the app's database is terminated (pg_terminate_backend) several times,
 * about a second apart, while one worker process executes chaosFlow runs (six steps, two transactional).
 * Pooled connections die under in-flight steps, checkpoints, claims and the LISTEN connection. Every run
 * finishes, every transactional step's business row exists exactly once, and the worker never exits.
 * Full size: `npm run chaos dbhiccup`. And the sharpest case of it, on its own: the backend of a
 * transactional step terminated while the step's body runs, idle in its transaction.
 */
import { createTestDatabase, TestDatabase } from './support/database';
import { expectAllFinishedOnce } from './support/fault-expect';
import { dbHiccup, withWorkers } from './support/fault-scenarios';
import { CHAOS_STEPS, prepareDatabase, query, summaryLine, workloadReport } from './support/fault-workload';
import { sleep } from './support/helpers';

jest.setTimeout(300_000);

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
});

afterAll(async () => {
  await database?.drop();
});

test('100 runs through 5 rounds of terminated backends: all finish, transactional rows once, worker alive', async () => {
  const runs = 100;
  const result = await dbHiccup(database.url, {
    runs,
    hiccups: 5,
    intervalMs: 1_000,
    // Steps long enough (up to 300 ms each) that runs are in flight through every round.
    stepDelayMs: 300,
    finishMs: 180_000,
  });
  process.stdout.write(`${summaryLine('dbhiccup', result)}\n`);
  expectAllFinishedOnce(result, runs);
});

test("a transactional step's backend terminated while its body runs: rolled back, retried, its row once", async () => {
  const own = await createTestDatabase();
  const url = own.url;
  await prepareDatabase(url);
  try {
    await withWorkers(url, async (workers, effectsFile) => {
      const worker = await workers.start('tx-cut-1', { BLOCK_AT: 'post' });
      worker.send('START txcut-1 chaosFlow [1]');
      // post#1 has inserted its ledger row and waits, its connection idle in the step's transaction.
      await worker.waitFor(/^BLOCKED txcut-1 post/, 60_000);
      const [{ n }] = await query<{ n: number }>(
        url,
        `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
       WHERE datname = current_database() AND application_name = 'tx-cut-1' AND state = 'idle in transaction'`,
      );
      expect(n).toBe(1);
      // The connection's end reaches the worker while the body still runs; then every post is let go.
      await worker.waitFor(/connection of the pool failed \(57P01/, 60_000);
      let status = '';
      const deadline = Date.now() + 90_000;
      while (status !== 'succeeded' && status !== 'failed' && Date.now() < deadline) {
        worker.send('RELEASE txcut-1');
        await sleep(200);
        [{ status } = { status: '' }] = await query<{ status: string }>(
          url,
          `SELECT status FROM durable.runs WHERE id = 'txcut-1'`,
        );
      }
      const steps = await query<{ key: string; status: string }>(
        url,
        `SELECT key, status FROM durable.steps WHERE run_id = 'txcut-1' ORDER BY seq`,
      );
      const ledger = await query<{ step_key: string; n: number }>(
        url,
        `SELECT step_key, count(*)::int AS n FROM public.ledger WHERE run_id = 'txcut-1' GROUP BY 1 ORDER BY 1`,
      );
      const { txRetries } = await workloadReport(url, 'txcut', effectsFile);
      const context = workers.outputs(20);
      expect({
        status,
        steps: steps.map((step) => `${step.key} ${step.status}`),
        ledger: Object.fromEntries(ledger.map((row) => [row.step_key, row.n])),
        // The attempt whose connection was lost ran its body; it was rolled back and ran again.
        txRetries,
        alive: worker.alive(),
        context,
      }).toEqual({
        status: 'succeeded',
        steps: CHAOS_STEPS.map((key) => `${key} succeeded`),
        ledger: { 'post#1': 1, 'post#2': 1 },
        txRetries: 1,
        alive: true,
        context,
      });
    });
  } finally {
    await own.drop();
  }
});
