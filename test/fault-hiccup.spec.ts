/**
 * "dbhiccup": every backend of the app's database is terminated (pg_terminate_backend) several times,
 * about a second apart, while one worker process executes chaosFlow runs (six steps, two transactional).
 * Pooled connections die under in-flight steps, checkpoints, claims and the LISTEN connection. Every run
 * finishes, every transactional step's business row exists exactly once, and the worker never exits.
 * Full size: `npm run chaos dbhiccup`. And the sharpest cases of it, on their own: the backend of a
 * transactional step terminated while the step's body runs, idle in its transaction, after its business
 * write (which must not be lost while its checkpoint commits) or before its first statement (which must
 * not use up the step's retries: a lost connection is the engine's to retry).
 */
import { readFile } from 'node:fs/promises';
import { createTestDatabase, TestDatabase } from './support/database';
import { expectAllFinishedOnce } from './support/fault-expect';
import { dbHiccup, withWorkers } from './support/fault-scenarios';
import { CHAOS_STEPS, prepareDatabase, query, summaryLine } from './support/fault-workload';
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

/**
 * One run of `workflow` in a worker that blocks at `blockAt`: when it blocks, the backend of its step
 * transaction (idle in it) is terminated, then the worker is let go (every later block too) until the
 * run ends. Returns what the database holds about the run, and how often each step body ran.
 */
async function cutTransaction(workflow: string, blockAt: string) {
  const own = await createTestDatabase();
  const url = own.url;
  const id = `${blockAt}-cut-1`;
  await prepareDatabase(url);
  try {
    return await withWorkers(url, async (workers, effectsFile) => {
      const worker = await workers.start('tx-cut-1', { BLOCK_AT: blockAt });
      worker.send(`START ${id} ${workflow} [1]`);
      await worker.waitFor(new RegExp(`^BLOCKED ${id} ${blockAt}`), 60_000);
      const [{ n }] = await query<{ n: number }>(
        url,
        `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
         WHERE datname = current_database() AND application_name = 'tx-cut-1' AND state = 'idle in transaction'`,
      );
      // The connection's end reaches the worker while the body still runs; then every block is let go.
      if (n === 1) await worker.waitFor(/connection of the pool failed \(57P01/, 60_000);
      let status = '';
      const deadline = Date.now() + 90_000;
      while (status !== 'succeeded' && status !== 'failed' && Date.now() < deadline) {
        worker.send(`RELEASE ${id}`);
        await sleep(200);
        [{ status } = { status: '' }] = await query<{ status: string }>(
          url,
          'SELECT status FROM durable.runs WHERE id = $1',
          [id],
        );
      }
      const steps = await query<{ key: string; status: string }>(
        url,
        'SELECT key, status FROM durable.steps WHERE run_id = $1 ORDER BY seq',
        [id],
      );
      const ledger = await query<{ step_key: string; n: number }>(
        url,
        'SELECT step_key, count(*)::int AS n FROM public.ledger WHERE run_id = $1 GROUP BY 1 ORDER BY 1',
        [id],
      );
      const executions: Record<string, number> = {};
      for (const line of (await readFile(effectsFile, 'utf8')).split('\n')) {
        const [runId, key] = line.split(' ');
        if (runId === id) executions[key] = (executions[key] ?? 0) + 1;
      }
      return {
        terminated: n,
        status,
        steps: steps.map((step) => `${step.key} ${step.status}`),
        ledger: Object.fromEntries(ledger.map((row) => [row.step_key, row.n])),
        executions,
        alive: worker.alive(),
        context: workers.outputs(20),
      };
    });
  } finally {
    await own.drop();
  }
}

test("a step's backend terminated after its business write: rolled back and run again, its row once", async () => {
  const { context, ...held } = await cutTransaction('chaosFlow', 'post');
  expect({ ...held, context }).toEqual({
    terminated: 1,
    status: 'succeeded',
    steps: CHAOS_STEPS.map((key) => `${key} succeeded`),
    ledger: { 'post#1': 1, 'post#2': 1 },
    // The attempt whose connection was lost ran its body; it was rolled back and ran again.
    executions: { 'work#1': 1, 'post#1': 2, 'work#2': 1, 'work#3': 1, 'post#2': 1, 'work#4': 1 },
    alive: true,
    context,
  });
});

test("a step's backend terminated before its body's first statement: retried though it has one attempt", async () => {
  const { context, ...held } = await cutTransaction('txOnceFlow', 'postOnce');
  expect({ ...held, context }).toEqual({
    terminated: 1,
    status: 'succeeded',
    steps: ['work#1 succeeded', 'postOnce#1 succeeded', 'work#2 succeeded'],
    ledger: { 'postOnce#1': 1 },
    executions: { 'work#1': 1, 'postOnce#1': 2, 'work#2': 1 },
    alive: true,
    context,
  });
});
