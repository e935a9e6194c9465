import { INestApplicationContext, Injectable } from '@nestjs/common';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import {
  Durable,
  DurableClient,
  InvalidArgumentError,
  InvalidOptionsError,
  Step,
  Workflow,
} from 'nest-durable';
import { RetentionService } from 'nest-durable/retention';
import { createTestDatabase } from './support/database';
import { createDurableApp } from './support/durable-app';
import { dataSourceOf, waitUntil } from './support/helpers';

@Injectable()
class Jobs {
  @Step() async work(n: number): Promise<number> {
    return n + 1;
  }

  @Workflow() async job(n: number): Promise<number> {
    return this.work(await this.work(n));
  }

  @Workflow() async hot(n: number): Promise<number> {
    return this.work(await this.work(await this.work(n)));
  }

  @Workflow() async waits(): Promise<unknown> {
    return Durable.waitForSignal('go');
  }

  @Workflow() async parent(): Promise<unknown> {
    await this.job(1);
    return Durable.waitForSignal('go');
  }
}

const ago = (ds: DataSource, ids: string[], hours: number) =>
  ds.query(
    `UPDATE durable.runs SET created_at = now() - $2::int * interval '1 hour',
       updated_at = now() - $2::int * interval '1 hour' + interval '1 minute' WHERE id = ANY($1)`,
    [ids, hours],
  );

describe('retention', () => {
  let database: { url: string; drop(): Promise<void> };
  let app: INestApplicationContext;
  let client: DurableClient;
  let ds: DataSource;

  beforeAll(async () => {
    database = await createTestDatabase();
    app = await createDurableApp({
      url: database.url,
      providers: [Jobs],
      durable: { leaseMs: 2_000, heartbeatMs: 500, pollIntervalMs: 100 },
      poolSize: 12,
    });
    client = app.get(DurableClient);
    ds = dataSourceOf(app);
  });

  afterAll(async () => {
    await app?.close();
    await database?.drop();
  });

  const exists = async (ids: string[]) =>
    (await ds.query(`SELECT id FROM durable.runs WHERE id = ANY($1) ORDER BY id`, [ids])).map(
      (row: { id: string }) => row.id,
    );

  it('purge deletes finished runs older than the cutoff with their steps and signals, and nothing else', async () => {
    for (const id of ['old-ok', 'new-ok'])
      await (await client.start('job', [1], { id })).result({ timeout: '10s' });
    await client.start('waits', [], { id: 'old-cancelled' });
    await client.signal('old-cancelled', 'unrelated', { x: 1 });
    await client.cancel('old-cancelled');
    await client.start('waits', [], { id: 'old-waiting' });
    const parent = await client.start('parent', [], { id: 'old-parent' });
    await waitUntil(
      'the parent to wait',
      async () => ((await client.status(parent.id))?.status === 'waiting' ? 1 : undefined),
      10_000,
    );
    const child = (await ds.query(`SELECT id FROM durable.runs WHERE parent_id = 'old-parent'`))[0]
      .id as string;
    await ago(ds, ['old-ok', 'old-cancelled', 'old-waiting', 'old-parent', child], 48);

    await expect(client.purge({ before: '1d', status: 'succeeded' })).resolves.toEqual({
      runs: 1,
      batches: 1,
    });
    // The succeeded child of a parent still waiting is kept: the parent may need it.
    expect(await exists(['old-ok', 'new-ok', child])).toEqual(['new-ok', child].sort());
    expect(await ds.query(`SELECT 1 FROM durable.steps WHERE run_id = 'old-ok'`)).toEqual([]);

    const result = await client.purge({ before: new Date(Date.now() - 3_600_000) });
    expect(result.runs).toBe(1); // old-cancelled; old-waiting and old-parent have not finished
    expect(await ds.query(`SELECT 1 FROM durable.signals WHERE run_id = 'old-cancelled'`)).toEqual([]);
    expect(await exists(['old-cancelled', 'old-waiting', 'old-parent'])).toEqual([
      'old-parent',
      'old-waiting',
    ]);

    await client.cancel('old-parent');
    await client.cancel('old-waiting');
  });

  it('refuses unfinished statuses and bad cutoffs with typed errors', async () => {
    await expect(client.purge({ before: '1d', status: 'running' as never })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    await expect(client.purge({ before: 'yesterday' })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(client.purge({ before: new Date('nope') })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(client.purge({ before: '1d', batchSize: 0 })).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('purges 100k old runs in bounded batches while new runs keep completing', async () => {
    await ds.query(`
      INSERT INTO durable.runs (id, workflow, version, status, input, output, created_at, updated_at)
      SELECT 'bulk-' || g, 'job', '1', 'succeeded', '[1]', '3', now() - interval '40 days', now() - interval '40 days'
      FROM generate_series(1, 100000) g`);
    await ds.query(`
      INSERT INTO durable.steps (run_id, key, name, kind, status, output, started_at, finished_at)
      SELECT 'bulk-' || g, 'work#' || k, 'work', 'step', 'succeeded', '2', now() - interval '40 days', now() - interval '40 days'
      FROM generate_series(1, 100000) g, generate_series(1, 2) k`);
    await ds.query(`ANALYZE durable.runs`);

    const p50 = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
    const baseline: number[] = [];
    for (let i = 0; i < 30; i++) {
      const started = Date.now();
      await (await client.start('hot', [i])).result({ timeout: '30s' });
      baseline.push(Date.now() - started);
    }
    const latencies: number[] = [];
    let purging = true;
    let completedDuringPurge = 0;
    const hot = (async () => {
      for (let i = 0; purging || i < 20; i++) {
        const started = Date.now();
        await (await client.start('hot', [i])).result({ timeout: '30s' });
        latencies.push(Date.now() - started);
        if (purging) completedDuringPurge++;
      }
    })();
    const purgeStarted = Date.now();
    const result = await client
      .purge({ before: '30d', status: 'succeeded', batchSize: 1_000 })
      .finally(() => {
        purging = false;
      });
    const purgeMs = Date.now() - purgeStarted;
    await hot;

    expect(result.runs).toBe(100_000);
    expect(result.batches).toBe(101); // 100 full batches and the one that found nothing left
    expect(await ds.query(`SELECT count(*)::int AS n FROM durable.runs WHERE id LIKE 'bulk-%'`)).toEqual([
      { n: 0 },
    ]);
    expect(await ds.query(`SELECT count(*)::int AS n FROM durable.steps WHERE run_id LIKE 'bulk-%'`)).toEqual(
      [{ n: 0 }],
    );
    // The hot path kept going while the purge ran: it never waited for the purge to finish.
    expect(completedDuringPurge).toBeGreaterThanOrEqual(5);
    process.stdout.write(
      `[retention] purged 100k runs in ${result.batches} batches, ${purgeMs} ms; ${completedDuringPurge} runs ` +
        `completed meanwhile; 3-step run latency p50 ${p50(latencies)} ms during (max ${Math.max(...latencies)} ms), ` +
        `${p50(baseline)} ms before\n`,
    );
  });

  it('the retention option purges periodically, one replica at a time, and removes silent executors', async () => {
    // Another replica holds the retention lock: this one skips its passes until it is released.
    const holder = new Client({ connectionString: database.url });
    holder.on('error', () => undefined);
    await holder.connect();
    await holder.query(`SELECT pg_advisory_lock(hashtext('durable-retention:durable'))`);
    const second = await createDurableApp({
      url: database.url,
      providers: [Jobs],
      durable: {
        executorId: 'retention-worker',
        worker: false,
        retention: { succeeded: '1h', failed: '1h', executors: '1h', interval: '200ms', batchSize: 2 },
      },
    });
    try {
      for (const id of ['r1', 'r2', 'r3'])
        await (await client.start('job', [1], { id })).result({ timeout: '10s' });
      await ago(ds, ['r1', 'r2', 'r3'], 5);
      await ds.query(
        `INSERT INTO durable.executors (id, heartbeat_at) VALUES ('dead-1', now() - interval '2 hours'), ('alive-1', now())`,
      );
      const service = second.get(RetentionService);
      await expect(service.runPass()).resolves.toBeUndefined();
      expect(await exists(['r1', 'r2', 'r3'])).toEqual(['r1', 'r2', 'r3']);
      await holder.end();

      await waitUntil(
        'the periodic pass',
        async () => ((await exists(['r1', 'r2', 'r3'])).length === 0 ? 1 : undefined),
        20_000,
      );
      await waitUntil(
        'the silent executor row to go',
        async () =>
          (await ds.query(`SELECT id FROM durable.executors WHERE id = 'dead-1'`)).length === 0
            ? 1
            : undefined,
        20_000,
      );
      expect(await ds.query(`SELECT id FROM durable.executors WHERE id = 'alive-1'`)).toEqual([
        { id: 'alive-1' },
      ]);
    } finally {
      await holder.end().catch(() => undefined);
      await second.close();
    }
  });

  it('rejects invalid retention options at boot, naming the option', async () => {
    await expect(
      createDurableApp({ url: database.url, providers: [], durable: { retention: { succeeded: 'soon' } } }),
    ).rejects.toThrow(InvalidOptionsError);
    await expect(
      createDurableApp({ url: database.url, providers: [], durable: { retention: { keep: '1d' } as never } }),
    ).rejects.toThrow(/retention\.keep/);
  });
});
