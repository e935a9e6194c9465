/**
 * Progress that clients can read: Durable.setEvent inside a run, client.getEvent waiting through NOTIFY
 * (also from a client-only app, whose only news is its LISTEN connection), client.events streaming a
 * run's events in order; each event appended exactly once, also when the run is replayed.
 */
import { INestApplicationContext, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import {
  Durable,
  DurableClient,
  OutsideWorkflowError,
  RunNotFoundError,
  RunStreamItem,
  Step,
  Workflow,
} from 'nest-durable';
import { createTestDatabase, TestDatabase } from './support/database';
import { createDurableApp } from './support/durable-app';
import { gate, Gate, requeueRun, sql, uniqueId, within } from './support/helpers';

@Injectable()
class ProgressFlows {
  readonly gates = new Map<string, Gate>();

  @Workflow('progress')
  async progress(id: string) {
    await Durable.setEvent('stage', { name: 'first', at: new Date('2030-01-02T03:04:05Z') });
    await this.waitFor(`${id}:1`);
    await Durable.setEvent('stage', { name: 'second' });
    await this.waitFor(`${id}:2`);
    await Durable.setEvent('done', undefined);
    return 'ok';
  }

  @Workflow('parallelEvents')
  async parallelEvents() {
    await Promise.all([Durable.setEvent('a', 1), Durable.setEvent('b', 2), Durable.setEvent('a', 3)]);
    return 'ok';
  }

  @Workflow('eventInStep')
  async eventInStep() {
    return this.publishFromStep();
  }

  @Step({ retry: { maxAttempts: 1 } })
  async publishFromStep() {
    await Durable.setEvent('nope', 1);
  }

  @Step()
  async waitFor(label: string) {
    await this.gates.get(label)?.promise;
    return label;
  }
}

describe('run events: Durable.setEvent, client.getEvent, client.events', () => {
  let db: TestDatabase;
  let app: INestApplicationContext;
  let clientApp: INestApplicationContext;
  let client: DurableClient;
  let remote: DurableClient;
  let flows: ProgressFlows;
  let ds: DataSource;

  beforeAll(async () => {
    db = await createTestDatabase();
    app = await createDurableApp({ url: db.url, providers: [ProgressFlows] });
    // A client-only app: it learns about the run only through the database and NOTIFY.
    clientApp = await createDurableApp({ url: db.url, providers: [], durable: { worker: false } });
    client = app.get(DurableClient);
    remote = clientApp.get(DurableClient);
    flows = app.get(ProgressFlows);
    ds = app.get(DataSource);
  });

  afterAll(async () => {
    await clientApp?.close();
    await app?.close();
    await db?.drop();
  });

  function gated(id: string): [Gate, Gate] {
    const g1 = gate();
    const g2 = gate();
    flows.gates.set(`${id}:1`, g1);
    flows.gates.set(`${id}:2`, g2);
    return [g1, g2];
  }

  async function collect(stream: AsyncIterable<RunStreamItem>): Promise<RunStreamItem[]> {
    const items: RunStreamItem[] = [];
    for await (const item of stream) items.push(item);
    return items;
  }

  it('getEvent waits for a value set later, in another process, and returns the latest', async () => {
    const id = uniqueId('progress');
    const [g1, g2] = gated(id);
    await expect(remote.getEvent(id, 'stage')).rejects.toThrow(RunNotFoundError); // no such run yet

    await client.start('progress', [id], { id });
    const first = await within(
      15_000,
      remote.getEvent<{ name: string; at: Date }>(id, 'stage'),
      'first stage',
    );
    expect(first).toEqual({ name: 'first', at: new Date('2030-01-02T03:04:05Z') });

    const doneWaiter = remote.getEvent(id, 'done'); // not set yet: waits through NOTIFY
    g1.open();
    await within(
      15_000,
      waitForValue(() => remote.getEvent<{ name: string }>(id, 'stage', { timeout: 0 }), 'second'),
    );
    g2.open();
    expect(await within(15_000, doneWaiter, 'done event')).toBeNull(); // undefined is stored as null
    await client.handle(id).result();

    expect(await remote.getEvent(id, 'never-set')).toBeUndefined(); // the run ended without it
  });

  it('getEvent gives up after its timeout', async () => {
    const id = uniqueId('progress-timeout');
    const [g1, g2] = gated(id);
    await client.start('progress', [id], { id });
    expect(await remote.getEvent(id, 'done', { timeout: 200 })).toBeUndefined();
    g1.open();
    g2.open();
    await client.handle(id).result();
  });

  it('events() streams every event in order and ends with the outcome; `after` resumes', async () => {
    const id = uniqueId('stream');
    const [g1, g2] = gated(id);
    await client.start('progress', [id], { id });
    const streamed = collect(remote.events(id));
    g1.open();
    g2.open();
    const items = await within(15_000, streamed, 'the stream');
    expect(items).toEqual([
      {
        type: 'event',
        seq: 1,
        key: 'stage',
        value: { name: 'first', at: new Date('2030-01-02T03:04:05Z') },
        createdAt: expect.any(Date),
      },
      { type: 'event', seq: 2, key: 'stage', value: { name: 'second' }, createdAt: expect.any(Date) },
      { type: 'event', seq: 3, key: 'done', value: null, createdAt: expect.any(Date) },
      { type: 'finished', status: 'succeeded' },
    ]);
    const resumed = await collect(remote.events(id, { after: 2 }));
    expect(resumed.map((item) => (item.type === 'event' ? item.seq : item.status))).toEqual([3, 'succeeded']);
  });

  it('events() stops when its signal aborts', async () => {
    const id = uniqueId('stream-abort');
    const [g1, g2] = gated(id);
    await client.start('progress', [id], { id });
    const abort = new AbortController();
    const seen: RunStreamItem[] = [];
    const done = (async () => {
      for await (const item of remote.events(id, { signal: abort.signal })) {
        seen.push(item);
        abort.abort();
      }
    })();
    await within(15_000, done, 'the aborted stream');
    expect(seen).toHaveLength(1);
    g1.open();
    g2.open();
    await client.handle(id).result();
  });

  it('a replayed run does not append its events again', async () => {
    const id = uniqueId('replayed');
    flows.gates.delete(`${id}:1`);
    await client.start('progress', [id], { id });
    await client.handle(id).result();
    await requeueRun(ds, id);
    await within(
      15_000,
      waitForValue(
        async () =>
          (
            await sql<{ attempts: number; status: string }>(
              ds,
              'SELECT attempts, status FROM durable.runs WHERE id = $1',
              [id],
            )
          )[0],
        {
          attempts: 2,
          status: 'succeeded',
        },
      ),
    );
    const rows = await sql(ds, 'SELECT seq, key FROM durable.run_events WHERE run_id = $1 ORDER BY seq', [
      id,
    ]);
    expect(rows).toEqual([
      { seq: 1, key: 'stage' },
      { seq: 2, key: 'stage' },
      { seq: 3, key: 'done' },
    ]);
    const steps = await client.status(id);
    expect(steps!.steps.map((s) => s.key)).toEqual([
      '$event:stage#1',
      'waitFor#1',
      '$event:stage#2',
      'waitFor#2',
      '$event:done#1',
    ]);
  });

  it('events set at once get consecutive numbers', async () => {
    const handle = await client.start('parallelEvents', []);
    await handle.result();
    const rows = await sql<{ seq: number; key: string; value: number }>(
      ds,
      'SELECT seq, key, value FROM durable.run_events WHERE run_id = $1 ORDER BY seq',
      [handle.id],
    );
    expect(rows.map((r) => r.seq)).toEqual([1, 2, 3]);
    // Parallel calls commit in whatever order they get the run's lock: a key's value is its latest row.
    const latestA = rows.filter((r) => r.key === 'a').pop()!;
    expect(await client.getEvent(handle.id, 'a')).toBe(latestA.value);
  });

  it('setEvent inside a step is refused', async () => {
    const handle = await client.start('eventInStep', []);
    const error = await handle.result().catch((e: Error) => e);
    expect((error as { cause?: { name: string } }).cause?.name).toBe(OutsideWorkflowError.name);
  });
});

/** Polls `read` until it returns something equal to `expected` (deep); returns it. */
async function waitForValue<T>(read: () => Promise<T>, expected: unknown): Promise<T> {
  for (;;) {
    const value = await read();
    if (JSON.stringify(value) === JSON.stringify(expected) || (value as { name?: string })?.name === expected)
      return value;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
