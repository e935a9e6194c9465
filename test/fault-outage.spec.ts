/**
 * An outage longer than the checkpoint retries' longest backoff (5 s) and than the lease (4 s): for
 * 8 s the database cannot be reached (test/support/pg-proxy.ts drops every connection of the worker
 * and refuses new ones, as a stopped server does), while the worker that owns the runs stays alive.
 * Its checkpoints, heartbeats and claims all fail meanwhile; when the database answers again no run
 * stays `running` without an execution: every run finishes, every transactional row exists once.
 * Full size: `npm run chaos outage`.
 */
import { createTestDatabase, TestDatabase } from './support/database';
import { expectAllFinishedOnce } from './support/fault-expect';
import { outage } from './support/fault-scenarios';
import { summaryLine } from './support/fault-workload';

jest.setTimeout(300_000);

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
});

afterAll(async () => {
  await database?.drop();
});

test('8 s without the database, owner alive: no run stays running, all finish after it returns', async () => {
  const runs = 60;
  const result = await outage(database.url, {
    runs,
    // Steps long enough (up to 500 ms each) that runs are in flight when the outage begins.
    stepDelayMs: 500,
    afterMs: 1_500,
    outageMs: 8_000,
    finishMs: 180_000,
  });
  process.stdout.write(`${summaryLine('outage', result)}\n`);
  expectAllFinishedOnce(result, runs);
});
