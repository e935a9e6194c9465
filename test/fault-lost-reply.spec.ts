/**
 * Lost replies: a write reaches PostgreSQL and is executed, but its reply never reaches the app (the
 * connection drops in between), so the app cannot know whether it happened. test/support/pg-proxy.ts
 * sits between one worker process (test/fixtures/fault-worker.ts) and the database and loses the reply
 * to one chosen statement (a plain step's checkpoint INSERT, a run's finish, a transactional step's
 * COMMIT, a claim, an inline start). Whatever the write was, the run finishes, every transactional
 * step's business row exists exactly once, and no step body runs twice (asserted on what the database
 * and the worker's effects file hold).
 */
import { INestApplicationContext } from '@nestjs/common';
import { DurableClient } from 'nest-durable';
import { createTestDatabase, TestDatabase } from './support/database';
import { withWorkers } from './support/fault-scenarios';
import { CHAOS_STEPS, clientApp, prepareDatabase, query, workloadReport } from './support/fault-workload';
import { PgProxy, rowsWritten } from './support/pg-proxy';
import { STATEMENTS } from './support/statement-patterns';
import { WorkerProcess, WorkerSet } from './support/workers';

jest.setTimeout(120_000);

let database: TestDatabase;
let proxy: PgProxy;
let client: INestApplicationContext;
let worker: WorkerProcess;
let workers: WorkerSet;
let effects: string;
let finishSuite: () => void;
let suiteDone: Promise<void>;

beforeAll(async () => {
  database = await createTestDatabase();
  await prepareDatabase(database.url);
  const target = new URL(database.url);
  proxy = await PgProxy.start({ host: target.hostname, port: Number(target.port || 5432) });
  client = await clientApp(database.url); // straight to the database: only the worker goes through the proxy
  // One worker for every test, kept by withWorkers until the suite ends.
  let ready!: () => void;
  const started = new Promise<void>((resolve) => (ready = resolve));
  suiteDone = withWorkers(proxy.urlFor(database.url), async (set, effectsFile) => {
    workers = set;
    effects = effectsFile;
    worker = await set.start('lost-reply-1', { STEP_DELAY_MS: 5 });
    ready();
    await new Promise<void>((resolve) => (finishSuite = resolve));
  });
  await Promise.race([started, suiteDone]);
}, 120_000);

afterAll(async () => {
  finishSuite?.();
  await suiteDone?.catch(() => undefined);
  await client?.close();
  await proxy?.close();
  await database?.drop();
});

/**
 * Starts the run `<prefix>-1` (from the client app, or inline in the worker) and waits for it to finish;
 * returns what the database holds about it.
 */
async function runOnce(prefix: string, inline = false) {
  const id = `${prefix}-1`;
  if (inline) worker.send(`START ${id} chaosFlow [1]`);
  else await client.get(DurableClient).start('chaosFlow', [1], { id });
  return report(prefix);
}

async function report(prefix: string) {
  const id = `${prefix}-1`;
  // Polls until the run ended (or 45 s passed: many leases), then reads what the database holds about it.
  const deadline = Date.now() + 45_000;
  let status = '';
  while (Date.now() < deadline) {
    [{ status } = { status: '' }] = await query<{ status: string }>(
      database.url,
      'SELECT status FROM durable.runs WHERE id = $1',
      [id],
    );
    if (status === 'succeeded' || status === 'failed') break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  const steps = await query<{ key: string; status: string }>(
    database.url,
    'SELECT key, status FROM durable.steps WHERE run_id = $1 ORDER BY seq',
    [id],
  );
  const ledger = await query<{ step_key: string; n: number }>(
    database.url,
    'SELECT step_key, count(*)::int AS n FROM public.ledger WHERE run_id = $1 GROUP BY 1 ORDER BY 1',
    [id],
  );
  const { reexecutions, txRetries } = await workloadReport(database.url, prefix, effects);
  const [{ attempts } = { attempts: 0 }] = await query<{ attempts: number }>(
    database.url,
    'SELECT attempts FROM durable.runs WHERE id = $1',
    [id],
  );
  return {
    status,
    steps: steps.map((step) => `${step.key} ${step.status}`),
    ledger: Object.fromEntries(ledger.map((row) => [row.step_key, row.n])),
    // Step bodies executed again: none, whatever reply was lost (each outcome is resolved by reading).
    executedAgain: { reexecutions, txRetries },
    alive: worker.alive(),
    /** How many times the run was claimed (not compared: a lost claim or start makes it 2). */
    attempts,
  };
}

const EXPECTED = {
  status: 'succeeded',
  steps: CHAOS_STEPS.map((key) => `${key} succeeded`),
  ledger: { 'post#1': 1, 'post#2': 1 },
  executedAgain: { reexecutions: 0, txRetries: 0 },
  alive: true,
};

function expectFinishedOnce(result: Awaited<ReturnType<typeof report>>): void {
  const { attempts: _attempts, ...held } = result;
  const context = workers.outputs(30);
  expect({ ...held, context }).toEqual({ ...EXPECTED, context });
}

test('the checkpoint INSERT of a plain step: the run goes on from it', async () => {
  const cut = proxy.loseReply(STATEMENTS.checkpoint, { inTransaction: false, when: rowsWritten });
  const result = await runOnce('lost-checkpoint');
  await cut.fired;
  expectFinishedOnce(result);
});

test('the finish of a run: it stays finished with the recorded outcome', async () => {
  const cut = proxy.loseReply(STATEMENTS.finish, { when: rowsWritten });
  const result = await runOnce('lost-finish');
  await cut.fired;
  expectFinishedOnce(result);
});

test("a transactional step's COMMIT: its rows and checkpoint are there once, the step is not run again", async () => {
  const cut = proxy.loseReply(STATEMENTS.commit, {
    inTransaction: true,
    when: (tags) => tags.includes('COMMIT'),
  });
  const result = await runOnce('lost-commit');
  const lost = await cut.fired;
  expect(lost.sql).toMatch(STATEMENTS.commit);
  expectFinishedOnce(result);
});

test('a claim: the run owned with nothing executing it is released by the sweep, then finishes once', async () => {
  const cut = proxy.loseReply(STATEMENTS.claim, { when: rowsWritten });
  const result = await runOnce('lost-claim');
  await cut.fired;
  expectFinishedOnce(result);
  // Claimed twice: the claim whose reply was lost, and the one after the sweep released the run.
  expect(result.attempts).toBeGreaterThanOrEqual(2);
});

test('an inline start: the start returns the run, which the sweep releases and a claim finishes once', async () => {
  const cut = proxy.loseReply(STATEMENTS.start, { when: rowsWritten });
  const result = await runOnce('lost-start', true);
  await cut.fired;
  expectFinishedOnce(result);
  expect(worker.lines()).toContain('STARTED lost-start-1');
  expect(result.attempts).toBeGreaterThanOrEqual(2);
});
