import { INestApplicationContext, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { Durable, DurableClient, Step, Workflow } from 'nest-durable';
import { createTestDatabase } from './support/database';
import { createDurableApp } from './support/durable-app';
import { sleep, within } from './support/helpers';
import { watchStatements } from './support/statements';

/**
 * Counts the SQL statements each app sends to PostgreSQL during one run. Counting, not mocking: the spy
 * on pg's Client.prototype.query delegates to the real method. Timers that would add statements
 * (heartbeat, sweep, result polling) are set far beyond the test's duration, so the counts are exact.
 */
@Injectable()
class Pipeline {
  @Workflow()
  async threeSteps(x: number) {
    let v = x;
    for (let i = 0; i < 3; i++) v = await this.add(v);
    return v;
  }

  @Workflow()
  async tenSteps(x: number) {
    let v = x;
    for (let i = 0; i < 10; i++) v = await this.add(v);
    return v;
  }

  @Step()
  async add(v: number) {
    return v + 1;
  }

  @Workflow()
  async approveThenAdd(x: number) {
    const v = await this.add(x);
    const bonus = await Durable.waitForSignal<number>('go');
    return this.add(v + (bonus ?? 0));
  }

  @Workflow()
  async threeTransactionalSteps(x: number) {
    let v = x;
    for (let i = 0; i < 3; i++) v = await this.addAndStore(v);
    return v;
  }

  @Workflow()
  async readTransactionSettings() {
    return this.transactionSettings();
  }

  @Step({ transactional: true, isolation: 'REPEATABLE READ' })
  async transactionSettings(): Promise<string[]> {
    const [row] = await Durable.manager().query(
      `SELECT current_setting('transaction_isolation') AS isolation,
              current_setting('idle_in_transaction_session_timeout') AS bound`,
    );
    return [row.isolation, row.bound];
  }

  @Step({ transactional: true })
  async addAndStore(v: number) {
    await Durable.manager().query('INSERT INTO budget_effects (v) VALUES ($1)', [v]);
    return v + 1;
  }
}

const QUIET = { leaseMs: 600_000, heartbeatMs: 100_000, pollIntervalMs: 100_000 };

let db: { url: string; drop(): Promise<void> };
let worker: INestApplicationContext;
let starter: INestApplicationContext;
let spy: jest.SpyInstance;
/** Statements seen per pg application_name while `recording`, with their text. */
const seen = new Map<string, string[]>();
let recording = false;

beforeAll(async () => {
  db = await createTestDatabase();
  worker = await createDurableApp({
    url: db.url,
    providers: [Pipeline],
    applicationName: 'budget-worker',
    durable: { ...QUIET, executorId: 'budget-worker' },
  });
  starter = await createDurableApp({
    url: db.url,
    providers: [Pipeline],
    applicationName: 'budget-starter',
    durable: { ...QUIET, executorId: 'budget-starter', worker: false },
  });
  spy = watchStatements(({ app, text }) => {
    if (recording) seen.set(app, [...(seen.get(app) ?? []), text.replace(/\s+/g, ' ').trim()]);
  });
  await worker.get(DataSource).query('CREATE TABLE budget_effects (v integer NOT NULL)');
  // Warm-up: open pool connections and LISTEN before anything is counted.
  await worker.get(Pipeline).threeSteps(0);
  await starter
    .get(DurableClient)
    .start('threeSteps', [0])
    .then((h) => within(60_000, h.result()));
  await sleep(SETTLE_MS);
});

afterAll(async () => {
  spy?.mockRestore();
  await starter?.close();
  await worker?.close();
  await db?.drop();
});

async function record<T>(body: () => Promise<T>): Promise<{ result: T; counts: Record<string, string[]> }> {
  seen.clear();
  recording = true;
  try {
    const result = await body();
    // The notification of a finish follows its commit (DoneNotifier): wait for it, then let what it
    // causes (its 'done' handled in every app) happen inside the window.
    for (let waited = 0; waited < 10_000 && !notified(); waited += 10) await sleep(10);
    await sleep(SETTLE_MS);
    return { result, counts: Object.fromEntries(seen) };
  } finally {
    recording = false;
  }
}

/** Whether every finish recorded in the window was followed by its notification. */
const notified = () =>
  [...seen.values()].every((statements) => {
    const kindsSeen = kinds(statements);
    return (
      kindsSeen.filter((k) => k === 'finish').length <= kindsSeen.filter((k) => k === 'notify done').length
    );
  });

const kinds = (statements: string[] = []) =>
  statements.map((s) =>
    /INSERT INTO "durable"\.runs .*'running'/.test(s)
      ? 'insert+claim'
      : /INSERT INTO "durable"\.runs/.test(s)
        ? 'insert'
        : /^WITH due AS/.test(s)
          ? 'claim'
          : /existing AS \(/.test(s)
            ? 'consume signal'
            : /INSERT INTO "durable"\.steps/.test(s)
              ? 'checkpoint'
              : /UPDATE "durable"\.runs SET status = \$4/.test(s)
                ? 'finish'
                : /^SELECT set_config\('synchronous_commit', 'off', true\)/.test(s)
                  ? 'notify done'
                  : /^SELECT id, workflow, version, status/.test(s)
                    ? 'read run'
                    : /^START TRANSACTION; SET LOCAL idle_in_transaction_session_timeout = \d+$/.test(s)
                      ? 'begin+bound'
                      : /^INSERT INTO budget_effects/.test(s)
                        ? 'business'
                        : s.slice(0, 60),
  );

/** Runs are repeated: an extra statement that depends on a race shows up in some of them. */
const RUNS = 15;
const SETTLE_MS = 40;

describe.each([3, 10])('a %i-step workflow', (k) => {
  const method = k === 3 ? 'threeSteps' : 'tenSteps';
  const expectedDirect = ['insert+claim', ...Array<string>(k).fill('checkpoint'), 'finish', 'notify done'];
  const expectedOnWorker = ['claim', ...Array<string>(k).fill('checkpoint'), 'finish', 'notify done'];

  it(`called directly costs exactly ${k} + 2 statements: insert-claim, ${k} checkpoints, finish; then the notification`, async () => {
    const pipeline = worker.get(Pipeline);
    const perRun: string[][] = [];
    for (let i = 0; i < RUNS; i++) {
      const { result, counts } = await record(() => pipeline[method](100));
      expect(result).toBe(100 + k);
      expect(Object.keys(counts)).toEqual(['budget-worker']);
      perRun.push(kinds(counts['budget-worker']));
    }
    console.log(
      `direct call of a ${k}-step workflow, statements per run over ${RUNS} runs: ${perRun.map((r) => r.length).join(' ')}\n` +
        `  expected each: ${expectedDirect.length} (${expectedDirect.join(', ')})\n` +
        perRun
          .filter((r) => r.length !== expectedDirect.length)
          .map((r) => `  deviating run: ${r.join(', ')}`)
          .join('\n'),
    );
    expect(perRun).toEqual(Array(RUNS).fill(expectedDirect));
  });

  it(`started by a worker: false app costs 1 statement there, then claim + ${k} + finish on the worker, then the notification`, async () => {
    const client = starter.get(DurableClient);
    const perRun: { start: string[]; worker: string[] }[] = [];
    for (let i = 0; i < RUNS; i++) {
      let atStart: string[] = [];
      const { result, counts } = await record(async () => {
        const handle = await client.start(method, [200]);
        atStart = kinds(seen.get('budget-starter'));
        // Waiting from the starter adds statements there (reads of the run), none on the worker.
        return within(60_000, handle.result());
      });
      expect(result).toBe(200 + k);
      perRun.push({ start: atStart, worker: kinds(counts['budget-worker']) });
    }
    console.log(
      `${k}-step workflow started by a worker: false app, over ${RUNS} runs:\n` +
        `  statements to start: ${perRun.map((r) => r.start.length).join(' ')}\n` +
        `  statements on the worker: ${perRun.map((r) => r.worker.length).join(' ')} ` +
        `(expected each: ${expectedOnWorker.length}: ${expectedOnWorker.join(', ')})\n` +
        perRun
          .filter((r) => r.worker.length !== expectedOnWorker.length)
          .map((r) => `  deviating run on the worker: ${r.worker.join(', ')}`)
          .join('\n'),
    );
    expect(perRun.map((r) => r.start)).toEqual(Array(RUNS).fill(['insert']));
    expect(perRun.map((r) => r.worker)).toEqual(Array(RUNS).fill(expectedOnWorker));
  });
});

describe('a 3-step workflow of transactional steps', () => {
  const perStep = ['begin+bound', 'business', 'checkpoint', 'COMMIT'];
  const expected = ['insert+claim', ...perStep, ...perStep, ...perStep, 'finish', 'notify done'];

  it('costs the 3 step transactions (BEGIN with its bound, business write, checkpoint, COMMIT) + 2, then the notification', async () => {
    const pipeline = worker.get(Pipeline);
    const perRun: string[][] = [];
    for (let i = 0; i < RUNS; i++) {
      const { result, counts } = await record(() => pipeline.threeTransactionalSteps(300));
      expect(result).toBe(303);
      perRun.push(kinds(counts['budget-worker']));
    }
    console.log(
      `direct call of 3 transactional steps, statements per run over ${RUNS} runs: ${perRun.map((r) => r.length).join(' ')}\n` +
        `  expected each: ${expected.length} (${expected.join(', ')})`,
    );
    expect(perRun).toEqual(Array(RUNS).fill(expected));
  });
});

describe('a step transaction', () => {
  it('is bounded by the lease from its BEGIN, and still gets the isolation level asked for', async () => {
    const { result, counts } = await record(() => worker.get(Pipeline).readTransactionSettings());
    expect(result).toEqual(['repeatable read', '10min']);
    expect(kinds(counts['budget-worker']).slice(1, 4)).toEqual([
      'begin+bound',
      'SET TRANSACTION ISOLATION LEVEL REPEATABLE READ',
      "SELECT current_setting('transaction_isolation') AS isolation",
    ]);
  });
});

describe('a run woken by a signal', () => {
  it('is claimed with its history in the claim: claim, consume signal, checkpoint, finish, notification', async () => {
    const handle = await worker.get(DurableClient).start('approveThenAdd', [400]);
    await within(60_000, waitForStatus(handle.id, 'waiting'));
    const { result, counts } = await record(async () => {
      const client = starter.get(DurableClient);
      await client.signal(handle.id, 'go', 10);
      return within(60_000, client.handle(handle.id).result());
    });
    expect(result).toBe(412);
    expect(kinds(counts['budget-worker'])).toEqual([
      'claim',
      'consume signal',
      'checkpoint',
      'finish',
      'notify done',
    ]);
  });
});

async function waitForStatus(id: string, status: string): Promise<void> {
  while ((await starter.get(DurableClient).status(id))?.status !== status) await sleep(10);
}
