/**
 * App servers whose wall clock is minutes off (test/fixtures/clock-skew.ts shifts Date in a worker
 * process): every time that decides something must come from the database, so skewed workers behave
 * exactly as correct ones. Each test mixes workers whose clocks disagree by ten minutes:
 * - leases: a live owner keeps its runs; a dead one's runs are taken over.
 */
import { INestApplicationContext } from '@nestjs/common';
import { DurableClient, RunInfo } from 'nest-durable';
import { createTestDatabase, TestDatabase } from './support/database';
import { FAULT_TIMINGS, withWorkers } from './support/fault-scenarios';
import { clientApp, prepareDatabase, query } from './support/fault-workload';
import { sleep, waitUntil } from './support/helpers';
import { WorkerSet } from './support/workers';

jest.setTimeout(180_000);

const AHEAD = { CLOCK_SKEW_MS: 5 * 60_000 };
const BEHIND = { CLOCK_SKEW_MS: -5 * 60_000 };

let database: TestDatabase;
let app: INestApplicationContext;

beforeEach(async () => {
  database = await createTestDatabase();
  await prepareDatabase(database.url);
  app = await clientApp(database.url);
});

afterEach(async () => {
  await app?.close();
  await database?.drop();
});

const client = () => app.get(DurableClient);

async function runRow(id: string) {
  const [row] = await query<{ status: string; executor: string | null }>(
    database.url,
    'SELECT status, executor FROM durable.runs WHERE id = $1',
    [id],
  );
  return row;
}

/** Waits for `id` to end (succeeded or failed); returns its RunInfo. */
function ended(id: string, workers: WorkerSet, ms = 90_000): Promise<RunInfo> {
  return waitUntil(
    `run ${id} to end`,
    async () => {
      const info = await client().status(id);
      return info && ['succeeded', 'failed', 'cancelled'].includes(info.status) ? info : undefined;
    },
    ms,
    async () => `${JSON.stringify(await runRow(id))}\n${workers.outputs(20)}`,
  );
}

test("leases: a live owner keeps its runs whatever its clock; a dead owner's runs are taken over", async () => {
  await withWorkers(database.url, async (workers) => {
    const owner = await workers.start('skew-owner', { ...AHEAD, BLOCK_AT: 'work', BLOCK_MS: 600_000 });
    const taker = await workers.start('skew-taker', BEHIND);
    const ids = ['lease-1', 'lease-2', 'lease-3'];
    for (const id of ids) owner.send(`START ${id} chaosFlow [1]`);
    for (const id of ids) await owner.waitFor(new RegExp(`^BLOCKED ${id} `));
    // Two leases with both alive: the taker's clock is ten minutes behind the owner's, yet it takes nothing.
    await sleep(2 * FAULT_TIMINGS.LEASE_MS);
    for (const id of ids) expect(await runRow(id)).toEqual({ status: 'running', executor: 'skew-owner' });
    await owner.kill('SIGKILL');
    for (const id of ids) {
      const info = await ended(id, workers);
      expect(info.status).toBe('succeeded');
    }
    expect(taker.alive()).toBe(true);
  });
});
