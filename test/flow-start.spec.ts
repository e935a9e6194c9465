/**
 * Start options that shape when and whether a run starts: delay, startAt, dedupKey and debounce.
 */
import { INestApplicationContext, Injectable } from '@nestjs/common';
import { DurableClient, InvalidArgumentError, Workflow } from 'nest-durable';
import { createTestDatabase, TestDatabase } from './support/database';
import { createDurableApp } from './support/durable-app';
import { dataSourceOf, gate, Gate, sql, uniqueId } from './support/helpers';

jest.setTimeout(60_000);

@Injectable()
class Jobs {
  readonly gates = new Map<string, Gate>();
  readonly calls: unknown[][] = [];

  @Workflow()
  async echo(...args: unknown[]) {
    this.calls.push(args);
    return args;
  }

  /** Waits until the test opens the gate named `name`. */
  @Workflow()
  async held(name: string) {
    let g = this.gates.get(name);
    if (!g) this.gates.set(name, (g = gate()));
    await g.promise;
    return name;
  }
}

let database: TestDatabase;
let app: INestApplicationContext;
let client: DurableClient;
let jobs: Jobs;

beforeAll(async () => {
  database = await createTestDatabase();
  app = await createDurableApp({
    url: database.url,
    providers: [Jobs],
    durable: { pollIntervalMs: 100, executorId: 'flow-start-spec' },
  });
  client = app.get(DurableClient);
  jobs = app.get(Jobs);
});

afterAll(async () => {
  await app?.close();
  await database?.drop();
});

const times = async (id: string) =>
  (
    await sql<{ created_at: Date; available_at: Date; claimed_at: Date | null; deadline: Date | null }>(
      dataSourceOf(app),
      `SELECT created_at, available_at, claimed_at, deadline FROM durable.runs WHERE id = $1`,
      [id],
    )
  )[0];

describe('delay and startAt', () => {
  it('a delayed run is not claimed before its time; its timeout counts from then', async () => {
    const handle = await client.start('echo', ['later'], {
      id: uniqueId('delayed'),
      delay: '1s',
      timeout: '1m',
    });
    expect((await handle.status())!.status).toBe('pending');
    expect(await handle.result({ timeout: '20s' })).toEqual(['later']);
    const t = await times(handle.id);
    expect(t.available_at.getTime() - t.created_at.getTime()).toBeGreaterThanOrEqual(1_000);
    expect(t.claimed_at!.getTime()).toBeGreaterThanOrEqual(t.available_at.getTime());
    expect(t.deadline!.getTime() - t.available_at.getTime()).toBe(60_000);
  });

  it('startAt sets the instant', async () => {
    const startAt = new Date(Date.now() + 60 * 60_000);
    const handle = await client.start('echo', ['next hour'], { id: uniqueId('at'), startAt });
    expect((await times(handle.id)).available_at).toEqual(startAt);
    expect((await handle.status())!.status).toBe('pending');
    await client.cancel(handle.id);
  });
});

describe('dedupKey', () => {
  it('returns the unfinished run holding the key; once it has finished, the key is free again', async () => {
    const first = await client.start('held', ['dedup-1'], { id: uniqueId('first'), dedupKey: 'tenant-7' });
    const second = await client.start('held', ['dedup-2'], { id: uniqueId('second'), dedupKey: 'tenant-7' });
    expect(second.id).toBe(first.id);
    const other = await client.start('held', ['dedup-3'], { id: uniqueId('other'), dedupKey: 'tenant-8' });
    expect(other.id).not.toBe(first.id);
    // Starting the same id again still returns it (ids stay idempotency keys).
    expect((await client.start('held', ['dedup-1'], { id: first.id, dedupKey: 'tenant-7' })).id).toBe(
      first.id,
    );

    for (const name of ['dedup-1', 'dedup-3']) {
      await waitForGate(name);
      jobs.gates.get(name)!.open();
    }
    await first.result({ timeout: '20s' });
    await other.result({ timeout: '20s' });
    const third = await client.start('echo', ['free'], { id: uniqueId('third'), dedupKey: 'tenant-7' });
    expect(third.id).not.toBe(first.id);
    expect(await third.result({ timeout: '20s' })).toEqual(['free']);
  });
});

describe('debounce', () => {
  it('calls within one window make one run, with the latest input, started when the window ends', async () => {
    jobs.calls.length = 0;
    const key = uniqueId('user');
    const handles = [];
    for (let i = 1; i <= 5; i++)
      handles.push(await client.start('echo', [i], { debounce: { key, window: '2s' } }));
    const ids = new Set(handles.map((h) => h.id));
    // The five calls fall in one window, or straddle the end of one (then two runs).
    expect(ids.size).toBeLessThanOrEqual(2);
    const last = handles[handles.length - 1];
    expect(last.id).toMatch(new RegExp(`^debounce:echo:${key}:\\d+$`));
    expect(await last.result({ timeout: '20s' })).toEqual([5]);
    const t = await times(last.id);
    expect(t.claimed_at!.getTime()).toBeGreaterThanOrEqual(t.available_at.getTime());
    expect(jobs.calls.filter(([n]) => n === 5)).toHaveLength(1);
    expect(jobs.calls.length).toBe(ids.size);

    // After the window's run started, the next call makes a new run.
    const next = await client.start('echo', [6], { debounce: { key, window: '2s' } });
    expect(ids.has(next.id)).toBe(false);
    expect(await next.result({ timeout: '20s' })).toEqual([6]);
  });
});

describe('bad start options', () => {
  it.each([
    [{ delay: '1s', startAt: new Date() }, /either delay or startAt/],
    [{ delay: 'soon' }, /Invalid duration/],
    [{ startAt: new Date('nope') }, /startAt must be a valid Date/],
    [{ dedupKey: '' }, /Invalid dedup key/],
    [{ debounce: { key: 'k', window: '1s' }, id: 'x' }, /debounce derives the run id/],
    [{ debounce: { key: '', window: '1s' } }, /Invalid debounce key/],
    [{ debounce: { key: 'k', window: 0 } }, /debounce.window must be/],
  ])('%j is refused with a typed error', async (options, message) => {
    const attempt = client.start('echo', [], options as never);
    await expect(attempt).rejects.toThrow(InvalidArgumentError);
    await expect(attempt).rejects.toThrow(message);
  });
});

async function waitForGate(name: string): Promise<void> {
  for (let i = 0; i < 400 && !jobs.gates.has(name); i++) await new Promise((r) => setTimeout(r, 50));
  if (!jobs.gates.has(name)) throw new Error(`run ${name} did not start`);
}
