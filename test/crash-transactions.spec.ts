/**
 * Crash tests of the transactional guarantees, against a real PostgreSQL database (one per test):
 * - a worker process (test/fixtures/scenario-worker.ts, FLOWS=tx) running workflows of transactional
 *   steps is killed with SIGKILL at random moments, again and again, and restarted each time: every
 *   business row written through Durable.manager() exists exactly once;
 * - the outbox over HTTP: a Nest HTTP app whose controller inserts a row and starts a run in one
 *   transaction; the run exists only if the row does.
 */
import {
  Body,
  ConsoleLogger,
  Controller,
  INestApplication,
  INestApplicationContext,
  Injectable,
  Post,
  HttpCode,
} from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { join } from 'node:path';
import { Client } from 'pg';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { Durable, DurableClient, durableMigrations, DurableModule, Step, Workflow } from 'nest-durable';
import { createTestDatabase, TestDatabase } from './support/database';
import { createDurableApp } from './support/durable-app';
import { gate, Gate, sleep, waitUntil, within } from './support/helpers';
import { EFFECTS_TABLE_DDL } from './support/tables';
import { WorkerSet } from './support/workers';

/** How long a test waits for an event (a result, a response): generous, as a loaded machine is slow. */
const WAIT_MS = 60_000;

const FIXTURE = join(__dirname, 'fixtures', 'scenario-worker.ts');

let database: TestDatabase | undefined;
let db: Client;

async function freshDatabase(): Promise<void> {
  database = await createTestDatabase();
  db = new Client({ connectionString: database.url });
  await db.connect();
  await db.query(EFFECTS_TABLE_DDL);
  // Business rows of the transactional steps: no unique constraint, so a duplicate would show.
  await db.query(`CREATE TABLE public.ledger (
    id bigserial PRIMARY KEY, run_id text NOT NULL, step_key text NOT NULL, executor text, pid integer,
    at timestamptz NOT NULL DEFAULT clock_timestamp())`);
  await db.query(`CREATE TABLE public.orders (
    id text NOT NULL, amount integer NOT NULL, status text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`);
}

async function dropDatabase(): Promise<void> {
  await db?.end().catch(() => undefined);
  await database?.drop();
  database = undefined;
}

/**
 * For a describe block: a fresh database per test, scenario-worker processes (`baseEnv` blanks the
 * switches a test does not set) and a client-only app to start runs; all killed and dropped after.
 */
function scenarioWorkers(baseEnv: Record<string, string>) {
  const workers = new WorkerSet({ fixture: FIXTURE, url: () => database!.url, baseEnv });
  let clientApp: INestApplicationContext | undefined;

  beforeEach(async () => {
    await freshDatabase();
    clientApp = await createDurableApp({ url: database!.url, providers: [], durable: { worker: false } });
  });

  afterEach(async () => {
    await workers.killAll();
    await clientApp?.close();
    clientApp = undefined;
    await dropDatabase();
  });

  return { workers, startClient: () => clientApp!.get(DurableClient) };
}

describe('transactional steps under repeated kill -9 (real processes, real PostgreSQL)', () => {
  const RUNS = 200;
  const KILLS = 20;
  const { workers, startClient } = scenarioWorkers({
    FLOWS: 'tx',
    BLOCK_AT: '',
    BLOCK_MS: '',
    LEASE_MS: '',
    HEARTBEAT_MS: '',
    POOL: '',
    // The process is killed 20 times on purpose, sometimes before a recovered run can record a step:
    // these runs are bystanders, not poison, so the set-aside limit must not be what this test meets.
    MAX_RECOVERY_ATTEMPTS: '100',
  });

  async function succeededCount(): Promise<number> {
    const { rows } = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM durable.runs WHERE status = 'succeeded'`,
    );
    return rows[0].n;
  }

  it(`${KILLS} kills at random moments, each followed by a restart: every business row exists exactly once`, async () => {
    const client = startClient();
    const ids = Array.from({ length: RUNS }, (_, i) => `L-${String(i + 1).padStart(3, '0')}`);
    for (let i = 0; i < ids.length; i += 50)
      await Promise.all(ids.slice(i, i + 50).map((id, j) => client.start('ledgerFlow', [i + j + 1], { id })));

    const env = { POLL_MS: 200, CONCURRENCY: 8, STEP_DELAY_MS: 40 };
    const lives: { pid: number; effects: number; delayMs: number; doneBefore: number; doneAfter: number }[] =
      [];
    const started = Date.now();
    for (let k = 0; k < KILLS; k++) {
      const doneBefore = await succeededCount();
      // Same executor id every time: each new life recovers the previous life's runs at bootstrap.
      const worker = await workers.start('exec-tx', env);
      // Killed at a random point of its own progress (however slow the machine): once it has begun a
      // random number of step bodies, plus a few ms. A post's body writes its effect row, then its
      // business row and pauses inside its transaction, so many kills land before that commit.
      const effects = 1 + Math.floor(Math.random() * 8);
      await waitUntil(
        `life ${k + 1} to begin ${effects} step bodies`,
        async () => {
          const { rows } = await db.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM public.effects WHERE pid = $1`,
            [worker.pid],
          );
          return rows[0].n >= effects ? true : undefined;
        },
        WAIT_MS,
      );
      const delayMs = Math.floor(Math.random() * 25);
      await sleep(delayMs);
      await worker.kill('SIGKILL');
      lives.push({ pid: worker.pid, effects, delayMs, doneBefore, doneAfter: await succeededCount() });
    }
    const killPhaseMs = Date.now() - started;
    const doneAtLastKill = await succeededCount();

    const final = await workers.start('exec-tx', env);
    const deadline = Date.now() + WAIT_MS * 4; // the whole backlog, on one worker
    while ((await succeededCount()) < RUNS && Date.now() < deadline) await sleep(100);
    const { rows: statuses } = await db.query<{ status: string; n: number }>(
      `SELECT status, count(*)::int AS n FROM durable.runs GROUP BY 1 ORDER BY 1`,
    );
    if (statuses.length !== 1) process.stderr.write(`${workers.outputs(20)}\n`);
    expect(statuses).toEqual([{ status: 'succeeded', n: RUNS }]);

    // Exactly once: one business row per (run, transactional step), none missing, none doubled.
    const { rows: perStep } = await db.query<{ run_id: string; step_key: string; n: number }>(
      `SELECT run_id, step_key, count(*)::int AS n FROM public.ledger GROUP BY 1, 2 ORDER BY 1, 2`,
    );
    expect(perStep.filter((row) => row.n !== 1)).toEqual([]);
    expect(perStep).toHaveLength(RUNS * 3);
    expect(new Set(perStep.map((row) => `${row.run_id}/${row.step_key}`))).toEqual(
      new Set(ids.flatMap((id) => ['post#1', 'post#2', 'post#3'].map((key) => `${id}/${key}`))),
    );
    // Each checkpoint committed with its own business row: the recorded output names that very row.
    const { rows: mismatched } = await db.query(
      `SELECT s.run_id, s.key, s.output, l.id AS ledger_id, l.pid
       FROM durable.steps s JOIN public.ledger l ON l.run_id = s.run_id AND l.step_key = s.key
       WHERE s.name = 'post' AND ((s.output->>'ledgerId')::bigint <> l.id OR (s.output->>'pid')::int <> l.pid)`,
    );
    expect(mismatched).toEqual([]);
    const { rows: outputs } = await db.query<{ id: string; posted: number[]; ledger: number[] }>(
      `SELECT r.id, r.output->'posted' AS posted,
              (SELECT array_agg(l.id::int ORDER BY l.step_key) FROM public.ledger l WHERE l.run_id = r.id) AS ledger
       FROM durable.runs r`,
    );
    expect(outputs.filter((row) => JSON.stringify(row.posted) !== JSON.stringify(row.ledger))).toEqual([]);
    const { rows: stepStats } = await db.query<{ name: string; status: string; n: number }>(
      `SELECT name, status, count(*)::int AS n FROM durable.steps GROUP BY 1, 2 ORDER BY 1, 2`,
    );
    expect(stepStats).toEqual([
      { name: 'notify', status: 'succeeded', n: RUNS * 3 },
      { name: 'post', status: 'succeeded', n: RUNS * 3 },
    ]);

    // What the kills did: transactional bodies executed and rolled back (their business row vanished),
    // and re-executions of the non-transactional steps (at-least-once: reported, not asserted zero).
    const { rows: executions } = await db.query<{ kind: string; executions: number; distinct_steps: number }>(
      `SELECT CASE WHEN label LIKE 'post%' THEN 'post' ELSE 'notify' END AS kind,
              count(*)::int AS executions, count(DISTINCT (run_id, label))::int AS distinct_steps
       FROM public.effects GROUP BY 1 ORDER BY 1`,
    );
    const byKind = Object.fromEntries(executions.map((row) => [row.kind, row]));
    const rolledBack = byKind.post.executions - byKind.post.distinct_steps;
    const reExecuted = byKind.notify.executions - byKind.notify.distinct_steps;
    // Per life: transactional bodies it began whose business row is not its own (rolled back by its kill).
    const { rows: perLife } = await db.query<{ pid: number; rolled_back: number }>(
      `SELECT e.pid, count(*) FILTER (WHERE NOT EXISTS (
                SELECT 1 FROM public.ledger l WHERE l.run_id = e.run_id AND l.step_key = e.step_key AND l.pid = e.pid)
              )::int AS rolled_back
       FROM public.effects e WHERE e.label LIKE 'post%' GROUP BY e.pid`,
    );
    const rolledBackByPid = new Map(perLife.map((row) => [row.pid, row.rolled_back]));
    const killsInsideTransactions = lives.filter((life) => (rolledBackByPid.get(life.pid) ?? 0) > 0).length;
    const { rows: attemptsStats } = await db.query<{ attempts: number; n: number }>(
      `SELECT attempts, count(*)::int AS n FROM durable.runs GROUP BY 1 ORDER BY 1`,
    );
    const report = {
      runs: RUNS,
      kills: lives.length,
      killAfterEffects: lives.map((life) => life.effects),
      killDelaysMs: lives.map((life) => life.delayMs),
      killPhaseMs,
      runsDoneAtLastKill: doneAtLastKill,
      killsThatRolledBackATransaction: killsInsideTransactions,
      runsDonePerLife: lives.map((life) => life.doneAfter - life.doneBefore),
      transactionalBodiesExecuted: byKind.post.executions,
      transactionalBodiesNotCommitted: rolledBack,
      nonTransactionalReExecutions: reExecuted,
      runAttempts: Object.fromEntries(attemptsStats.map((row) => [row.attempts, row.n])),
      finalWorkerPid: final.pid,
    };
    process.stderr.write(`[crash-transactions] kill loop: ${JSON.stringify(report)}\n`);

    expect(lives).toHaveLength(KILLS);
    // The kills did land inside transactions (otherwise this test would prove nothing).
    expect(rolledBack).toBeGreaterThan(0);
    expect(killsInsideTransactions).toBeGreaterThan(0);
    // The final life began no transactional body that did not commit.
    expect(rolledBackByPid.get(final.pid) ?? 0).toBe(0);
    expect(byKind.post.distinct_steps).toBe(RUNS * 3);
    expect(byKind.notify.distinct_steps).toBe(RUNS * 3);
  }, 900_000); // 21 boots of a worker process: minutes on a loaded machine
});

describe('recovery order after kill -9 (real processes, real PostgreSQL)', () => {
  const { workers, startClient } = scenarioWorkers({
    FLOWS: 'tx',
    BLOCK_MS: '',
    LEASE_MS: '',
    HEARTBEAT_MS: '',
    STEP_DELAY_MS: '',
    POOL: '',
  });

  // README: "a stable executor id ... makes a restarted replica resume them at once". With a backlog of
  // runs queued behind them, the runs interrupted inside their transaction should be resumed first.
  it('a restarted executor resumes the runs it was executing before newer queued runs', async () => {
    const client = startClient();
    const env = { POLL_MS: 200, CONCURRENCY: 2, BLOCK_AT: 'post1' };
    const a = await workers.start('exec-tx', env);
    await client.start('ledgerFlow', [1], { id: 'first-1' });
    await client.start('ledgerFlow', [2], { id: 'first-2' });
    await a.waitFor(/^BLOCKED first-1 post1$/);
    await a.waitFor(/^BLOCKED first-2 post1$/);
    // A backlog queued while both slots are busy.
    for (let i = 1; i <= 6; i++) await client.start('ledgerFlow', [10 + i], { id: `queued-${i}` });
    await a.kill('SIGKILL');
    const { rows: ledger } = await db.query(`SELECT * FROM public.ledger`);
    expect(ledger).toEqual([]); // rolled back with the connections

    const b = await workers.start('exec-tx', env);
    await waitUntil(
      'two steps of B blocked',
      async () => (b.lines().filter((l) => l.startsWith('BLOCKED ')).length >= 2 ? true : undefined),
      WAIT_MS,
    );
    const resumedFirst = b
      .lines()
      .filter((line) => line.startsWith('BLOCKED '))
      .map((line) => line.split(' ')[1])
      .sort();
    const { rows: owned } = await db.query<{ id: string; attempts: number; status: string }>(
      `SELECT id, attempts, status FROM durable.runs WHERE executor = 'exec-tx' ORDER BY id`,
    );
    expect({ resumedFirst, owned }).toEqual({
      resumedFirst: ['first-1', 'first-2'],
      owned: [
        { id: 'first-1', attempts: 2, status: 'running' },
        { id: 'first-2', attempts: 2, status: 'running' },
      ],
    });
  });
});

/** Run ids of the orders: `order:<id>`. */
const runIdOf = (orderId: string) => `order:${orderId}`;

@Injectable()
class OrderFlows {
  constructor(private readonly dataSource: DataSource) {}

  @Step({ transactional: true }) async reserveStock(orderId: string): Promise<string> {
    const result = (await Durable.manager().query(
      `UPDATE public.orders SET status = 'reserved' WHERE id = $1 AND status = 'new' RETURNING id`,
      [orderId],
    )) as [unknown[], number];
    await this.effect('reserveStock');
    return result[1] === 1 ? 'reserved' : 'not found';
  }

  @Step() async ship(orderId: string): Promise<string> {
    await this.effect('ship');
    return `shipped ${orderId}`;
  }

  @Workflow() async fulfilOrder(orderId: string): Promise<{ reserved: string; shipped: string }> {
    const reserved = await this.reserveStock(orderId);
    const shipped = await this.ship(orderId);
    return { reserved, shipped };
  }

  private async effect(label: string): Promise<void> {
    const { runId, step } = Durable.context();
    await this.dataSource.query(
      `INSERT INTO public.effects (run_id, label, step_key, js_ms) VALUES ($1, $2, $3, $4)`,
      [runId, label, step!.key, Date.now()],
    );
  }
}

/** Lets a test hold a request inside its transaction, after the start and before the commit. */
@Injectable()
class Holds {
  readonly reached = new Map<string, Gate>();
  readonly release = new Map<string, Gate>();

  hold(orderId: string): { reached: Gate; release: Gate } {
    const entry = { reached: gate(), release: gate() };
    this.reached.set(orderId, entry.reached);
    this.release.set(orderId, entry.release);
    return entry;
  }
}

interface CreateOrder {
  id: string;
  amount: number;
  /** Throw after the run was started, inside the transaction (the client gets a 500). */
  fail?: boolean;
}

@Controller('orders')
class OrdersController {
  constructor(
    private readonly dataSource: DataSource,
    private readonly durable: DurableClient,
    private readonly flows: OrderFlows,
    private readonly holds: Holds,
  ) {}

  /** Inserts the order and starts its fulfilment in one transaction: both or neither. */
  @Post()
  @HttpCode(202)
  async create(@Body() body: CreateOrder): Promise<{ runId: string }> {
    const runId = runIdOf(body.id);
    await this.dataSource.transaction(async (manager) => {
      await manager.query(`INSERT INTO public.orders (id, amount, status) VALUES ($1, $2, 'new')`, [
        body.id,
        body.amount,
      ]);
      await this.durable.start(this.flows.fulfilOrder, [body.id], { id: runId, manager });
      const held = this.holds.reached.get(body.id);
      if (held) {
        held.open();
        await this.holds.release.get(body.id)!.promise;
      }
      if (body.fail) throw new Error(`payment declined for order ${body.id}`);
    });
    return { runId };
  }
}

/** Keeps what Nest logs, so the test can assert that nothing but the expected failure was logged. */
class RecordingLogger extends ConsoleLogger {
  readonly entries: { level: string; message: string }[] = [];

  override error(message: unknown, ...rest: unknown[]): void {
    this.entries.push({ level: 'error', message: [message, ...rest].map(String).join(' ') });
  }

  override warn(message: unknown, ...rest: unknown[]): void {
    this.entries.push({ level: 'warn', message: [message, ...rest].map(String).join(' ') });
  }

  override log(): void {}
  override debug(): void {}
  override verbose(): void {}
}

describe('outbox over HTTP: a controller inserts a row and starts a run in one transaction', () => {
  const POLL_MS = 100;
  let app: INestApplication | undefined;
  let client: DurableClient;
  let holds: Holds;
  const logger = new RecordingLogger();

  beforeAll(async () => {
    await freshDatabase();
    const moduleRef = await Test.createTestingModule({
      imports: [
        TypeOrmModule.forRoot({
          type: 'postgres',
          url: database!.url,
          migrations: durableMigrations(),
          migrationsRun: true,
          extra: { max: 10 },
        }),
        ScheduleModule.forRoot(),
        DurableModule.forRoot({ pollIntervalMs: POLL_MS, leaseMs: 2_000, heartbeatMs: 500 }),
      ],
      controllers: [OrdersController],
      providers: [OrderFlows, Holds],
    })
      .setLogger(logger)
      .compile();
    app = moduleRef.createNestApplication({ logger });
    await app.init();
    client = app.get(DurableClient);
    holds = app.get(Holds);
  });

  afterAll(async () => {
    await app?.close();
    await dropDatabase();
  });

  async function orderRows(id: string) {
    const { rows } = await db.query<{ id: string; amount: number; status: string }>(
      `SELECT id, amount, status FROM public.orders WHERE id = $1`,
      [id],
    );
    return rows;
  }

  async function runRows(id: string) {
    const { rows } = await db.query<{ id: string; status: string; workflow: string }>(
      `SELECT id, status, workflow FROM durable.runs WHERE id = $1`,
      [id],
    );
    return rows;
  }

  async function effectCount(runId: string): Promise<number> {
    const { rows } = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM public.effects WHERE run_id = $1`,
      [runId],
    );
    return rows[0].n;
  }

  it('HTTP 500 after the start: neither the row nor the run exists, nothing executes, and the id stays free', async () => {
    const response = await request(app!.getHttpServer())
      .post('/orders')
      .send({ id: 'o-1', amount: 30, fail: true });
    expect(response.status).toBe(500);
    expect(response.body).toEqual({ statusCode: 500, message: 'Internal server error' });

    expect(await orderRows('o-1')).toEqual([]);
    expect(await runRows(runIdOf('o-1'))).toEqual([]);
    expect(await client.status(runIdOf('o-1'))).toBeNull();
    await sleep(5 * POLL_MS); // a worker that saw the run would have executed it by now
    expect(await effectCount(runIdOf('o-1'))).toBe(0);
    const { rows } = await db.query<{ n: number }>(
      `SELECT (SELECT count(*) FROM durable.runs)::int + (SELECT count(*) FROM durable.steps)::int AS n`,
    );
    expect(rows[0].n).toBe(0); // no trace at all

    // The same request without the failure: the id was never taken.
    const retried = await request(app!.getHttpServer()).post('/orders').send({ id: 'o-1', amount: 30 });
    expect(retried.status).toBe(202);
    expect(retried.body).toEqual({ runId: runIdOf('o-1') });
    const output = await within(WAIT_MS, client.handle(runIdOf('o-1')).result(), 'o-1 result');
    expect(output).toEqual({ reserved: 'reserved', shipped: 'shipped o-1' });
    expect(await orderRows('o-1')).toEqual([{ id: 'o-1', amount: 30, status: 'reserved' }]);

    const errors = logger.entries.filter((entry) => entry.level === 'error');
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.every((entry) => entry.message.includes('payment declined for order o-1'))).toBe(true);
  });

  it('HTTP 202: the row and the run both exist, the run is invisible until the commit, then completes', async () => {
    const { reached, release } = holds.hold('o-2');
    const pending = request(app!.getHttpServer())
      .post('/orders')
      .send({ id: 'o-2', amount: 70 })
      .then((response) => response);
    await within(WAIT_MS, reached.promise, 'the request to reach its transaction');

    // Inside the open transaction: the run is inserted there, but nobody else sees it yet.
    expect(await orderRows('o-2')).toEqual([]);
    expect(await runRows(runIdOf('o-2'))).toEqual([]);
    await sleep(5 * POLL_MS);
    expect(await effectCount(runIdOf('o-2'))).toBe(0);
    release.open();

    const response = await within(WAIT_MS, pending, 'the response');
    expect(response.status).toBe(202);
    expect(response.body).toEqual({ runId: runIdOf('o-2') });
    expect(await orderRows('o-2')).toHaveLength(1);
    const output = await within(WAIT_MS, client.handle(runIdOf('o-2')).result(), 'o-2 result');
    expect(output).toEqual({ reserved: 'reserved', shipped: 'shipped o-2' });
    expect(await orderRows('o-2')).toEqual([{ id: 'o-2', amount: 70, status: 'reserved' }]);
    expect(await runRows(runIdOf('o-2'))).toEqual([
      { id: runIdOf('o-2'), status: 'succeeded', workflow: 'fulfilOrder' },
    ]);
    const info = (await client.status(runIdOf('o-2')))!;
    expect(info.steps.map((s) => [s.key, s.status])).toEqual([
      ['reserveStock#1', 'succeeded'],
      ['ship#1', 'succeeded'],
    ]);
    expect(info.attempts).toBe(1);
    expect(await effectCount(runIdOf('o-2'))).toBe(2);
    expect(logger.entries.filter((e) => !e.message.includes('payment declined'))).toEqual([]);
  });
});
