import { INestApplicationContext, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { Durable, DurableClient, Step, Workflow } from 'nest-durable';
import { createDurableApp } from './support/durable-app';
import { gate, waitUntil } from './support/helpers';
import { OwnedPostgres } from './support/owned-postgres';

/**
 * The asyncCheckpoints option against a real crash of PostgreSQL (a server this test owns, fsync on).
 * Runs are held mid-flight after checkpoints the server acknowledged asynchronously; its WAL writer is
 * paused first, so those checkpoints are surely still in memory when the server is stopped in immediate
 * mode (as `pg_ctl stop -m immediate`): the crash loses them. After the restart every run must finish,
 * each transactional step's business row must exist exactly once, the lost steps must have run again,
 * and each run's history must be complete and in order.
 */

const RUNS = 12;
const LEDGER = 'CREATE TABLE ledger (run_id text NOT NULL, step text NOT NULL)';
/** Every step of `flow`, in order. */
const KEYS = ['plainA#1', 'txB#1', 'plainC#1', 'holdOne#1', 'plainE#1', 'holdTwo#1', 'txF#1'];

@Injectable()
class CrashFlows {
  readonly gateOne = gate();
  readonly gateTwo = gate();
  /** Bodies executed, per `${runId} ${step key}`. */
  readonly executions = new Map<string, number>();

  @Workflow('asyncCrash')
  async flow(n: number): Promise<number> {
    const a = await this.plainA(n);
    const b = await this.txB(a);
    const c = await this.plainC(b);
    const d = await this.holdOne(c);
    const e = await this.plainE(d);
    const f = await this.holdTwo(e);
    return this.txF(f);
  }

  executed(key: string): number[] {
    return [...this.executions].filter(([k]) => k.endsWith(` ${key}`)).map(([, count]) => count);
  }

  private count(): void {
    const { runId, step } = Durable.context();
    const key = `${runId} ${step!.key}`;
    this.executions.set(key, (this.executions.get(key) ?? 0) + 1);
  }

  @Step() async plainA(n: number) {
    this.count();
    return n + 1;
  }
  @Step({ transactional: true }) async txB(n: number) {
    return this.business(n);
  }
  @Step() async plainC(n: number) {
    this.count();
    return n + 1;
  }
  @Step() async holdOne(n: number) {
    this.count();
    await this.gateOne.promise;
    return n + 1;
  }
  @Step() async plainE(n: number) {
    this.count();
    return n + 1;
  }
  @Step() async holdTwo(n: number) {
    this.count();
    await this.gateTwo.promise;
    return n + 1;
  }
  @Step({ transactional: true }) async txF(n: number) {
    return this.business(n);
  }

  private async business(n: number): Promise<number> {
    this.count();
    const { runId, step } = Durable.context();
    await Durable.manager().query('INSERT INTO ledger (run_id, step) VALUES ($1, $2)', [runId, step!.key]);
    return n + 1;
  }
}

describe('asyncCheckpoints: a crash of PostgreSQL', () => {
  let pg: OwnedPostgres;
  let app: INestApplicationContext | undefined;

  beforeAll(async () => {
    pg = await OwnedPostgres.create({
      // fsync on, as in production; nothing but the runs may flush the WAL in the crash window.
      settings: { fsync: 'on', autovacuum: 'off', bgwriter_lru_maxpages: 0, checkpoint_timeout: '1h' },
    });
  });

  afterAll(async () => {
    await app?.close().catch(() => undefined);
    await pg?.destroy();
  });

  it('loses acknowledged checkpoints only: every run finishes, no transactional effect is lost or doubled', async () => {
    const url = await pg.createDatabase('app');
    app = await createDurableApp({
      url,
      providers: [CrashFlows],
      poolSize: 8,
      logLevels: [],
      durable: {
        asyncCheckpoints: true,
        concurrency: RUNS,
        pollIntervalMs: 200,
        // No heartbeat (a synchronous commit) inside the crash window.
        leaseMs: 600_000,
        heartbeatMs: 300_000,
      },
    });
    await app.get(DataSource).query(LEDGER);
    const flows = app.get(CrashFlows);
    const client = app.get(DurableClient);
    const db = (sql: string) => pg.query(sql, [], 'app');
    const count = async (sql: string) => Number((await db(sql))[0].n);

    const handles = await Promise.all(
      Array.from({ length: RUNS }, (_, i) => client.start('asyncCrash', [i * 100], { id: `crash-${i}` })),
    );
    await waitUntil(
      'every run held in holdOne',
      async () => (flows.executed('holdOne#1').length === RUNS ? true : undefined),
      30_000,
    );

    // From here on the server's WAL stays in its memory: only a synchronous commit would write it.
    const [{ pid: walWriter }] = await db(
      `SELECT pid FROM pg_stat_activity WHERE backend_type = 'walwriter'`,
    );
    process.kill(Number(walWriter), 'SIGSTOP');
    flows.gateOne.open();
    // Acknowledged: holdOne and plainE recorded (asynchronously) for every run, now held in holdTwo.
    await waitUntil(
      'plainE recorded for every run',
      async () =>
        (await count(`SELECT count(*) AS n FROM durable.steps WHERE key = 'plainE#1'`)) === RUNS
          ? true
          : undefined,
      30_000,
    );

    const stopped = pg.stop('immediate');
    process.kill(Number(walWriter), 'SIGKILL'); // paused: it must not write on its way out either
    await stopped;
    await pg.start();

    // The crash lost the asynchronous checkpoints written since the last synchronous commit...
    expect(
      await count(`SELECT count(*) AS n FROM durable.steps WHERE key IN ('holdOne#1', 'plainE#1')`),
    ).toBe(0);
    // ...and kept every synchronous one, with everything before it in the WAL.
    expect(await count(`SELECT count(*) AS n FROM ledger WHERE step = 'txB#1'`)).toBe(RUNS);
    expect(await count(`SELECT count(*) AS n FROM durable.steps WHERE key IN ('plainA#1', 'txB#1')`)).toBe(
      2 * RUNS,
    );

    flows.gateTwo.open();
    const outputs = await Promise.all(handles.map((h) => h.result({ timeout: 120_000 })));
    expect(outputs).toEqual(Array.from({ length: RUNS }, (_, i) => i * 100 + KEYS.length));

    // No transactional effect lost or doubled.
    const ledger = await db(`SELECT run_id, step, count(*)::int AS n FROM ledger GROUP BY 1, 2`);
    expect(ledger).toHaveLength(2 * RUNS);
    expect(ledger.every((row) => row.n === 1)).toBe(true);
    // The lost steps ran again; those before the first transactional step did not.
    expect(flows.executed('plainE#1')).toEqual(Array(RUNS).fill(2));
    expect(flows.executed('plainA#1')).toEqual(Array(RUNS).fill(1));
    // Every history complete, succeeded, in order.
    const histories = await db(
      `SELECT run_id, array_agg(key ORDER BY seq) AS keys, bool_and(status = 'succeeded') AS ok
       FROM durable.steps GROUP BY run_id`,
    );
    expect(histories).toHaveLength(RUNS);
    for (const h of histories) {
      expect(h.keys).toEqual(KEYS);
      expect(h.ok).toBe(true);
    }
  });
});
