/**
 * App servers whose wall clock is minutes off (test/fixtures/clock-skew.ts shifts Date in a worker
 * process): every time that decides something must come from the database, so skewed workers behave
 * exactly as correct ones. Each test mixes workers whose clocks disagree by ten minutes:
 * - leases: a live owner keeps its runs; a dead one's runs are taken over.
 * - sleeps, deadlines and resume: a sleep ends at its wake time and a deadline fails its run on the
 *   database's clock, whether the worker's clock is ahead (they would end at once) or behind (minutes
 *   late); a run failed on one worker and resumed on another, ten minutes apart, goes on from its
 *   recorded steps in their recorded order.
 */
import { INestApplicationContext } from '@nestjs/common';
import { readFile } from 'node:fs/promises';
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

/** Milliseconds between two instants of the database's clock, read from the database. */
async function databaseGap(sql: string, params: unknown[]): Promise<number> {
  const [row] = await query<{ ms: string }>(
    database.url,
    `SELECT (extract(epoch FROM (${sql})) * 1000)::bigint AS ms`,
    params,
  );
  return Number(row.ms);
}

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

test('sleeps, deadlines and resume follow the database clock, whichever way the app clock is off', async () => {
  const SLEEP_MS = 3_000;
  const sinceCreated = (id: string) =>
    databaseGap('SELECT updated_at - created_at FROM durable.runs WHERE id = $1', [id]);
  await withWorkers(database.url, async (workers, effectsFile) => {
    for (const [name, skew] of [
      ['ahead', AHEAD],
      ['behind', BEHIND],
    ] as const) {
      // One worker at a time, so that it is the one that sleeps, wakes and enforces the deadline.
      const worker = await workers.start(`skew-${name}`, skew);
      await client().start('sleepFlow', [SLEEP_MS], { id: `sleep-${name}` });
      await client().start('stallFlow', [1], { id: `deadline-${name}`, timeout: SLEEP_MS });
      // Ahead, a wake time or deadline on the app's clock would end at once; behind, five minutes late.
      const slept = await ended(`sleep-${name}`, workers);
      expect(slept.status).toBe('succeeded');
      const [{ wake_ms }] = await query<{ wake_ms: string }>(
        database.url,
        `SELECT (extract(epoch FROM ((s.output->'wakeAt'->>'v')::timestamptz - r.created_at)) * 1000)::bigint AS wake_ms
         FROM durable.steps s JOIN durable.runs r ON r.id = s.run_id WHERE s.run_id = $1 AND s.kind = 'sleep'`,
        [`sleep-${name}`],
      );
      expect(Number(wake_ms)).toBeGreaterThanOrEqual(SLEEP_MS);
      expect(await sinceCreated(`sleep-${name}`)).toBeGreaterThanOrEqual(SLEEP_MS);
      const timedOut = await ended(`deadline-${name}`, workers);
      expect({ status: timedOut.status, error: timedOut.error?.name }).toEqual({
        status: 'failed',
        error: 'WorkflowTimeoutError',
      });
      expect(await sinceCreated(`deadline-${name}`)).toBeGreaterThanOrEqual(SLEEP_MS);
      if (name === 'ahead') {
        await worker.kill('SIGKILL');
        continue;
      }
      // The run failed on the worker ten minutes ahead is resumed on the one behind: its recorded step
      // replays (not executed again), the stalled one executes again, and the run finishes.
      await client().resume('deadline-ahead');
      await worker.waitFor(/^BLOCKED deadline-ahead stall/, 90_000);
      worker.send('RELEASE deadline-ahead');
      const resumed = await ended('deadline-ahead', workers);
      expect({
        status: resumed.status,
        steps: resumed.steps.map((step) => `${step.key} ${step.status}`),
      }).toEqual({ status: 'succeeded', steps: ['work#1 succeeded', 'stall#1 succeeded'] });
      const executions = (await readFile(effectsFile, 'utf8'))
        .split('\n')
        .filter((line) => line.startsWith('deadline-ahead '))
        .map((line) => line.split(' ').slice(1, 3).join(' '));
      expect(executions).toEqual(['work#1 skew-ahead', 'stall#1 skew-ahead', 'stall#1 skew-behind']);
    }
  });
});
