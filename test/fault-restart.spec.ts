/**
 * The database server restarts under a running workload: a PostgreSQL server this test owns
 * (test/support/owned-postgres.ts, never the machine's shared one) is stopped twice while one worker
 * process executes chaosFlow runs, once `-m fast` and once `-m immediate` (a crash: no shutdown
 * checkpoint, every backend killed), each time down for a few seconds. The worker carries on without a
 * restart of its own: every run finishes, every transactional row exists exactly once.
 * Full size: `npm run chaos restart`.
 */
import { expectAllFinishedOnce } from './support/fault-expect';
import { serverRestarts } from './support/fault-scenarios';
import { summaryLine } from './support/fault-workload';
import { OwnedPostgres } from './support/owned-postgres';

jest.setTimeout(300_000);

let server: OwnedPostgres;

beforeAll(async () => {
  server = await OwnedPostgres.create();
}, 120_000);

afterAll(async () => {
  await server?.destroy();
});

test('stopped mid-run twice (fast, then immediate): all runs finish, transactional rows once', async () => {
  const runs = 100;
  const result = await serverRestarts(server, {
    runs,
    // Steps long enough (up to 400 ms each) that runs are in flight at both stops.
    stepDelayMs: 400,
    stops: [
      { mode: 'fast', downMs: 2_000 },
      { mode: 'immediate', downMs: 2_000 },
    ],
    intervalMs: 1_500,
    finishMs: 180_000,
  });
  // Printed, not asserted: how long after the server's return the last run finished (database clock).
  process.stdout.write(
    `${summaryLine('restart', result)}\n` +
      `restart: last run finished ${result.recoverSeconds?.toFixed(1)} s after the server came back\n`,
  );
  expectAllFinishedOnce(result, runs);
});
