/**
 * Replica chaos, short: three worker processes with stable executor ids share a few hundred chaosFlow
 * runs on a PostgreSQL server this test owns; for 15 s a random replica is SIGKILLed every 1.5-3 s and
 * started again (same id), and the server restarts once in the middle. Nothing is lost and no
 * transactional row is written twice; plain steps cut by a kill run again (at-least-once), which the
 * summary line counts. Full size: `npm run chaos replica-chaos`.
 */
import { expectAllFinishedOnce } from './support/fault-expect';
import { replicaChaos } from './support/fault-scenarios';
import { summaryLine } from './support/fault-workload';
import { OwnedPostgres } from './support/owned-postgres';

jest.setTimeout(420_000);

let server: OwnedPostgres;

beforeAll(async () => {
  server = await OwnedPostgres.create();
}, 120_000);

afterAll(async () => {
  await server?.destroy();
});

test('random SIGKILLs and a server restart: 0 lost, 0 duplicate transactional rows', async () => {
  const runs = 300;
  const result = await replicaChaos(server, {
    replicas: 3,
    runs,
    // Steps long enough (up to 600 ms each) that runs are in flight through the whole chaos.
    stepDelayMs: 600,
    chaosMs: 15_000,
    killEveryMs: [1_500, 3_000],
    serverRestartAtMs: 7_000,
    serverDownMs: 2_000,
    finishMs: 240_000,
  });
  process.stdout.write(
    `${summaryLine('replica-chaos', result)}\nreplica-chaos: ${result.kills} SIGKILLs, 1 server restart, ` +
      `${result.reexecutions} plain-step re-executions\n`,
  );
  expectAllFinishedOnce(result, runs);
});
