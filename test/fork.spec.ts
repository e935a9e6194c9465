import { INestApplicationContext, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import {
  Durable,
  DurableClient,
  InvalidArgumentError,
  RunConflictError,
  RunNotFoundError,
  RunStateError,
  Step,
  Workflow,
} from 'nest-durable';
import { createTestDatabase } from './support/database';
import { createDurableApp } from './support/durable-app';
import { dataSourceOf, waitUntil } from './support/helpers';

@Injectable()
class Forkable {
  broken = true;
  readonly calls: string[] = [];

  @Step() async prepare(label: string): Promise<string> {
    this.calls.push(`${Durable.context().runId}:prepare`);
    return `${label}-prepared`;
  }

  @Step({ retry: { maxAttempts: 1 } }) async flaky(): Promise<string> {
    this.calls.push(`${Durable.context().runId}:flaky`);
    if (this.broken) throw new Error('flaky is broken');
    return 'flaky-ok';
  }

  @Step() async finish(value: string): Promise<string> {
    this.calls.push(`${Durable.context().runId}:finish`);
    return `${value}!`;
  }

  @Workflow() async pipeline(label: string): Promise<string> {
    const prepared = await this.prepare(label);
    await this.flaky();
    return this.finish(prepared);
  }

  @Workflow() async waiter(): Promise<unknown> {
    await this.prepare('w');
    const go = await Durable.waitForSignal('go');
    await this.finish('w');
    return go;
  }

  @Step({ compensate: 'release' }) async reserve(what: string): Promise<string> {
    this.calls.push(`${Durable.context().runId}:reserve`);
    return `${what}-reserved`;
  }

  @Step() async release(reserved: string): Promise<void> {
    this.calls.push(`${Durable.context().runId}:release:${reserved}`);
  }

  @Workflow() async saga(what: string): Promise<string> {
    const reserved = await this.reserve(what);
    await this.prepare(what);
    await this.flaky();
    return reserved;
  }

  @Workflow() async double(x: number): Promise<number> {
    await this.prepare('child');
    return x * 2;
  }

  @Workflow() async parent(): Promise<number> {
    const doubled = await this.double(21);
    await this.flaky();
    return doubled;
  }
}

describe('fork', () => {
  let database: { url: string; drop(): Promise<void> };
  let app: INestApplicationContext;
  let client: DurableClient;
  let flows: Forkable;
  let ds: DataSource;

  beforeAll(async () => {
    database = await createTestDatabase();
    app = await createDurableApp({
      url: database.url,
      providers: [Forkable],
      durable: { leaseMs: 2_000, heartbeatMs: 500, pollIntervalMs: 100 },
    });
    client = app.get(DurableClient);
    flows = app.get(Forkable);
    ds = dataSourceOf(app);
  });

  beforeEach(() => {
    flows.broken = true;
    flows.calls.length = 0;
  });

  afterAll(async () => {
    await app?.close();
    await database?.drop();
  });

  const history = async (id: string) =>
    (await ds.query(`SELECT key, status FROM durable.steps WHERE run_id = $1 ORDER BY seq`, [id])) as {
      key: string;
      status: string;
    }[];
  const calls = (id: string) =>
    flows.calls.filter((call) => call.startsWith(`${id}:`)).map((c) => c.slice(id.length + 1));

  it('copies the steps recorded before the given one; that step and the rest execute again; the original is untouched', async () => {
    const original = await client.start('pipeline', ['a'], { id: 'fork-src-1' });
    await expect(original.result({ timeout: '10s' })).rejects.toThrow('flaky is broken');
    const before = await ds.query(`SELECT * FROM durable.steps WHERE run_id = 'fork-src-1' ORDER BY seq`);
    const runBefore = await ds.query(
      `SELECT status, error, updated_at FROM durable.runs WHERE id = 'fork-src-1'`,
    );

    flows.broken = false;
    const fork = await client.fork('fork-src-1', { fromStep: 'flaky#1', id: 'fork-1' });
    expect(fork.id).toBe('fork-1');
    await expect(fork.result({ timeout: '10s' })).resolves.toBe('a-prepared!');

    expect(calls('fork-1')).toEqual(['flaky', 'finish']); // prepare replayed from the copied history
    expect(await history('fork-1')).toEqual([
      { key: 'prepare#1', status: 'succeeded' },
      { key: 'flaky#1', status: 'succeeded' },
      { key: 'finish#1', status: 'succeeded' },
    ]);
    const forkRun = (await client.status('fork-1'))!;
    expect([forkRun.workflow, forkRun.version, forkRun.input]).toEqual(['pipeline', '1', ['a']]);
    expect(await ds.query(`SELECT * FROM durable.steps WHERE run_id = 'fork-src-1' ORDER BY seq`)).toEqual(
      before,
    );
    expect(
      await ds.query(`SELECT status, error, updated_at FROM durable.runs WHERE id = 'fork-src-1'`),
    ).toEqual(runBefore);
  });

  it('without fromStep copies nothing: the whole run executes again (random id by default)', async () => {
    flows.broken = false;
    const original = await client.start('pipeline', ['b'], { id: 'fork-src-2' });
    await expect(original.result({ timeout: '10s' })).resolves.toBe('b-prepared!');
    const fork = await client.fork('fork-src-2');
    expect(fork.id).toMatch(/^[0-9a-f-]{36}$/);
    await expect(fork.result({ timeout: '10s' })).resolves.toBe('b-prepared!');
    expect(calls(fork.id)).toEqual(['prepare', 'flaky', 'finish']);
  });

  it('does not copy a wait in flight: the fork waits for its own signal, the original keeps waiting', async () => {
    await client.start('waiter', [], { id: 'fork-src-3' });
    await waitUntil(
      'the original to wait',
      async () => ((await client.status('fork-src-3'))?.status === 'waiting' ? true : undefined),
      10_000,
    );
    const fork = await client.fork('fork-src-3', { fromStep: '$signal:go#1', id: 'fork-3' });
    await waitUntil(
      'the fork to wait',
      async () => ((await client.status('fork-3'))?.status === 'waiting' ? true : undefined),
      10_000,
    );
    expect(calls('fork-3')).toEqual([]); // prepare replayed
    await client.signal('fork-3', 'go', { ok: 1 });
    await expect(fork.result({ timeout: '10s' })).resolves.toEqual({ ok: 1 });
    expect((await client.status('fork-src-3'))!.status).toBe('waiting');
    await client.cancel('fork-src-3');
  });

  it('refuses to copy a step the original compensated, and never copies compensation rows', async () => {
    const original = await client.start('saga', ['db'], { id: 'fork-src-4' });
    await expect(original.result({ timeout: '10s' })).rejects.toThrow('flaky is broken');
    expect((await history('fork-src-4')).map((s) => s.key)).toEqual([
      'reserve#1',
      'prepare#1',
      'flaky#1',
      '$undo:reserve#1#1',
    ]);
    await expect(client.fork('fork-src-4', { fromStep: 'flaky#1' })).rejects.toBeInstanceOf(RunStateError);
    await expect(client.fork('fork-src-4', { fromStep: 'flaky#1' })).rejects.toThrow(
      /reserve#1.*compensated/,
    );

    flows.broken = false;
    const fork = await client.fork('fork-src-4', { fromStep: 'reserve#1', id: 'fork-4' });
    await expect(fork.result({ timeout: '10s' })).resolves.toBe('db-reserved');
    expect((await history('fork-4')).map((s) => s.key)).toEqual(['reserve#1', 'prepare#1', 'flaky#1']);
  });

  it('replays a copied child step: the original child run is not started again', async () => {
    const original = await client.start('parent', [], { id: 'fork-src-5' });
    await expect(original.result({ timeout: '10s' })).rejects.toThrow('flaky is broken');
    const children = await ds.query(`SELECT id FROM durable.runs WHERE parent_id = 'fork-src-5'`);
    expect(children).toHaveLength(1);
    flows.broken = false;
    flows.calls.length = 0;
    const fork = await client.fork('fork-src-5', { fromStep: 'flaky#1', id: 'fork-5' });
    await expect(fork.result({ timeout: '10s' })).resolves.toBe(42);
    expect(await ds.query(`SELECT id FROM durable.runs WHERE parent_id = 'fork-5'`)).toEqual([]);
    expect(flows.calls.filter((call) => call.endsWith(':prepare'))).toEqual([]);
  });

  it('answers bad requests with typed errors and creates nothing', async () => {
    const count = async () =>
      (
        await ds.query(
          `SELECT (SELECT count(*) FROM durable.runs) + (SELECT count(*) FROM durable.steps) AS n`,
        )
      )[0].n;
    const rows = await count();
    await expect(client.fork('no-such-run')).rejects.toBeInstanceOf(RunNotFoundError);
    await expect(client.fork('fork-src-1', { fromStep: 'nope#1' })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    await expect(client.fork('fork-src-1', { id: 'fork-1' })).rejects.toBeInstanceOf(RunConflictError);
    await expect(client.fork('fork-src-1', { id: 'bad\u0000id' })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    expect(await count()).toBe(rows);
  });
});
