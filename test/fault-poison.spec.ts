/**
 * A poison run: its step ends the process (process.exit, as an out-of-memory kill or a native crash
 * would) every time it is executed. Two replicas with stable executor ids are restarted after each
 * death, as an orchestrator does. The run is claimed again and again without progress until the limit
 * (maxRecoveryAttempts), then set aside: `failed` with RunSetAsideError, never retried forever; every
 * other run finishes, its transactional rows exactly once. Full size: `npm run chaos poison`.
 */
import { createTestDatabase, TestDatabase } from './support/database';
import { expectAllFinishedOnce } from './support/fault-expect';
import { poisonRun } from './support/fault-scenarios';
import { summaryLine } from './support/fault-workload';

jest.setTimeout(420_000);

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
});

afterAll(async () => {
  await database?.drop();
});

test('set aside as failed (RunSetAsideError) after the limit; every other run finishes', async () => {
  const others = 20;
  const maxRecoveryAttempts = 2;
  const result = await poisonRun(database.url, {
    replicas: 2,
    others,
    maxRecoveryAttempts,
    setAsideMs: 300_000,
    finishMs: 120_000,
  });
  process.stdout.write(
    `${summaryLine('poison', result)}\npoison: ${result.poison?.status} after ${result.executions} ` +
      `executions, ${result.deaths} replica deaths\n`,
  );
  if (result.poison?.status !== 'failed') process.stderr.write(`${result.output}\n`);
  expect({ status: result.poison?.status, name: result.poison?.error?.name }).toEqual({
    status: 'failed',
    name: 'RunSetAsideError',
  });
  // Executed once with progress (its first step), then claimed up to the limit without progress.
  expect(result.executions).toBeGreaterThanOrEqual(1);
  expect(result.executions).toBeLessThanOrEqual(maxRecoveryAttempts + 1);
  expectAllFinishedOnce(result, others);
});
