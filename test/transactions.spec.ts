import { INestApplicationContext, Injectable, Logger } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { Test } from '@nestjs/testing';
import { getDataSourceToken, InjectDataSource, TypeOrmModule } from '@nestjs/typeorm';
import { ClsPluginTransactional, Transactional, TransactionHost } from '@nestjs-cls/transactional';
import { TransactionalAdapterTypeOrm } from '@nestjs-cls/transactional-adapter-typeorm';
import { ClsModule } from 'nestjs-cls';
import { DataSource, EntityManager } from 'typeorm';
import {
  Durable,
  DurableClient,
  durableMigrations,
  DurableModule,
  InvalidOptionsError,
  StartNotCommittedError,
  Step,
  Workflow,
} from 'nest-durable';
import { createTestDatabase } from './support/database';
import { createDurableApp } from './support/durable-app';

/** Business rows written by transactional steps; no unique constraint, so duplicates would show. */
const LEDGER = `CREATE TABLE IF NOT EXISTS ledger (run_id text NOT NULL, entry text NOT NULL, amount int NOT NULL)`;

@Injectable()
class Payments {
  failNextCommit = new Set<string>();
  bodyRuns = 0;
  txSeenByCls?: boolean;
  holdStep?: Promise<void>;

  constructor(private readonly txHost: TransactionHost<TransactionalAdapterTypeOrm>) {}

  @Step({ transactional: true })
  async debit(amount: number): Promise<string> {
    this.bodyRuns++;
    const { runId } = Durable.context();
    await Durable.manager().query(`INSERT INTO ledger (run_id, entry, amount) VALUES ($1, 'debit', $2)`, [
      runId,
      amount,
    ]);
    // Written through nestjs-cls: joins the same transaction.
    this.txSeenByCls = this.txHost.tx === Durable.manager();
    await this.txHost.tx.query(`INSERT INTO ledger (run_id, entry, amount) VALUES ($1, 'debit-cls', $2)`, [
      runId,
      amount,
    ]);
    if (this.holdStep) await this.holdStep;
    if (this.failNextCommit.delete(runId)) throw new Error('transient failure after the write');
    return `debited ${amount}`;
  }

  /** What the step transactions of `incrementCounter` saw: their isolation and idle bound. */
  transactionSettings: string[] = [];

  @Step({ transactional: true, isolation: 'SERIALIZABLE' })
  async incrementCounter(): Promise<number> {
    const manager = Durable.manager();
    const [settings] = await manager.query(
      `SELECT current_setting('transaction_isolation') AS isolation,
              current_setting('idle_in_transaction_session_timeout') AS bound`,
    );
    this.transactionSettings.push(`${settings.isolation} ${settings.bound}`);
    const [{ value }] = await manager.query(`SELECT value FROM counters WHERE id = 1`);
    await new Promise((resolve) => setTimeout(resolve, 20));
    await manager.query(`UPDATE counters SET value = $1 WHERE id = 1`, [value + 1]);
    return value + 1;
  }

  slowStepStarted = false;

  /** Keeps writing after a pause: a cancel lands during the pause. */
  @Step({ transactional: true })
  async slowDebit(): Promise<void> {
    const { runId } = Durable.context();
    const manager = Durable.manager();
    await manager.query(`INSERT INTO ledger (run_id, entry, amount) VALUES ($1, 'before-pause', 1)`, [runId]);
    this.slowStepStarted = true;
    await manager.query(`SELECT pg_sleep(0.5)`);
    await manager.query(`INSERT INTO ledger (run_id, entry, amount) VALUES ($1, 'after-pause', 1)`, [runId]);
  }

  @Workflow()
  async slowCharge(): Promise<void> {
    await this.slowDebit();
  }

  @Workflow()
  async charge(amount: number): Promise<string> {
    return this.debit(amount);
  }

  @Workflow()
  async count(): Promise<number> {
    return this.incrementCounter();
  }

  @Workflow()
  async chargeTwiceFromStep(): Promise<string> {
    return this.startChildInsideTransaction();
  }

  /** Calling a workflow directly inside a transactional step would wait for an uncommitted run. */
  @Step({ transactional: true, retry: { maxAttempts: 5, initialDelay: 10 } })
  async startChildInsideTransaction(): Promise<string> {
    return this.charge(1);
  }
}

@Injectable()
class Signup {
  constructor(
    private readonly txHost: TransactionHost<TransactionalAdapterTypeOrm>,
    private readonly durable: DurableClient,
  ) {}

  @Transactional()
  async register(runId: string, fail: boolean): Promise<void> {
    await this.txHost.tx.query(`INSERT INTO ledger (run_id, entry, amount) VALUES ($1, 'signup', 0)`, [
      runId,
    ]);
    await this.durable.start('charge', [5], { id: runId });
    if (fail) throw new Error('signup failed after starting the workflow');
  }
}

@Injectable()
class Probe {
  constructor(@InjectDataSource() readonly dataSource: DataSource) {}
}

describe('transactions', () => {
  let database: { url: string; drop(): Promise<void> };
  let app: INestApplicationContext;
  let client: DurableClient;
  let payments: Payments;
  let dataSource: DataSource;

  const ledger = async (runId: string) =>
    (await dataSource.query(`SELECT entry FROM ledger WHERE run_id = $1 ORDER BY entry`, [runId])).map(
      (row: { entry: string }) => row.entry,
    );
  const runCount = async (id: string) =>
    Number((await dataSource.query(`SELECT count(*) AS n FROM durable.runs WHERE id = $1`, [id]))[0].n);

  beforeAll(async () => {
    database = await createTestDatabase();
    const moduleRef = await Test.createTestingModule({
      imports: [
        TypeOrmModule.forRoot({
          type: 'postgres',
          url: database.url,
          migrations: durableMigrations(),
          migrationsRun: true,
        }),
        ClsModule.forRoot({
          global: true,
          plugins: [
            new ClsPluginTransactional({
              adapter: new TransactionalAdapterTypeOrm({ dataSourceToken: getDataSourceToken() }),
            }),
          ],
        }),
        ScheduleModule.forRoot(),
        DurableModule.forRoot({ leaseMs: 2_000, heartbeatMs: 500, pollIntervalMs: 100 }),
      ],
      providers: [Payments, Signup, Probe],
    }).compile();
    Logger.overrideLogger(['error']);
    app = await moduleRef.init();
    client = app.get(DurableClient);
    payments = app.get(Payments);
    dataSource = app.get(Probe).dataSource;
    await dataSource.query(LEDGER);
    await dataSource.query(`CREATE TABLE counters (id int PRIMARY KEY, value int NOT NULL)`);
    await dataSource.query(`INSERT INTO counters VALUES (1, 0)`);
  });

  afterAll(async () => {
    await app?.close();
    await database?.drop();
  });

  it('a run started with a manager exists only if that transaction commits', async () => {
    await expect(
      dataSource.transaction(async (manager: EntityManager) => {
        await manager.query(`INSERT INTO ledger (run_id, entry, amount) VALUES ('outbox-1', 'order', 1)`);
        await client.start('charge', [10], { id: 'outbox-1', manager });
        throw new Error('rolled back');
      }),
    ).rejects.toThrow('rolled back');
    expect(await runCount('outbox-1')).toBe(0);
    expect(await ledger('outbox-1')).toEqual([]);

    const handle = await dataSource.transaction(async (manager: EntityManager) => {
      await manager.query(`INSERT INTO ledger (run_id, entry, amount) VALUES ('outbox-2', 'order', 1)`);
      return client.start('charge', [10], { id: 'outbox-2', manager });
    });
    await expect(handle.result({ timeout: '60s' })).resolves.toBe('debited 10');
    expect(await ledger('outbox-2')).toEqual(['debit', 'debit-cls', 'order']);
  });

  it('awaiting the result inside the uncommitted transaction throws instead of hanging', async () => {
    await expect(
      dataSource.transaction(async (manager: EntityManager) => {
        const handle = await client.start('charge', [1], { id: 'deadlock-1', manager });
        return handle.result();
      }),
    ).rejects.toBeInstanceOf(StartNotCommittedError);
    expect(await runCount('deadlock-1')).toBe(0);
  });

  it('a direct workflow call inside a transactional step fails clearly, without retries', async () => {
    const handle = await client.start('chargeTwiceFromStep', [], { id: 'nested-call' });
    await expect(handle.result({ timeout: '60s' })).rejects.toMatchObject({
      cause: { name: 'StartNotCommittedError' },
    });
    const info = await client.status('nested-call');
    expect(info!.steps.map((s) => [s.key, s.status, s.attempts])).toEqual([
      ['startChildInsideTransaction#1', 'failed', 1],
    ]);
  });

  it('a transactional step commits its writes with its checkpoint exactly once, and retries roll back', async () => {
    payments.failNextCommit.add('tx-once');
    const bodyRunsBefore = payments.bodyRuns;
    const handle = await client.start('charge', [7], { id: 'tx-once' });
    await expect(handle.result({ timeout: '60s' })).resolves.toBe('debited 7');
    expect(payments.bodyRuns - bodyRunsBefore).toBe(2);
    expect(payments.txSeenByCls).toBe(true);
    expect(await ledger('tx-once')).toEqual(['debit', 'debit-cls']);
    const [step] = (await client.status('tx-once'))!.steps;
    expect(step).toMatchObject({ key: 'debit#1', status: 'succeeded', attempts: 2 });
  });

  it('a step whose lease is lost mid-transaction rolls back its business writes', async () => {
    let release!: () => void;
    payments.holdStep = new Promise<void>((resolve) => (release = resolve));
    const handle = await client.start('charge', [3], { id: 'tx-fenced' });
    // Wait until the body wrote its rows (uncommitted), then take the run away from this executor.
    for (let i = 0; i < 100 && payments.bodyRuns === 0; i++) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 100));
    // A live executor (fresh heartbeat) took it over, so the sweep leaves it alone.
    await dataSource.query(
      `INSERT INTO durable.executors (id, heartbeat_at, started_at)
       VALUES ('someone-else', now() + interval '1 hour', now() - interval '1 hour')`,
    );
    await dataSource.query(
      `UPDATE durable.runs SET epoch = epoch + 1, executor = 'someone-else' WHERE id = 'tx-fenced'`,
    );
    payments.holdStep = undefined;
    release();
    await new Promise((r) => setTimeout(r, 300));
    expect(await ledger('tx-fenced')).toEqual([]);
    const info = await client.status('tx-fenced');
    expect(info!.status).toBe('running');
    expect(info!.steps).toEqual([]);
    // Hand it back to the queue: another execution commits the step once.
    await dataSource.query(
      `UPDATE durable.runs SET status = 'pending', executor = NULL WHERE id = 'tx-fenced'`,
    );
    await expect(handle.result({ timeout: '60s' })).resolves.toBe('debited 3');
    expect(await ledger('tx-fenced')).toEqual(['debit', 'debit-cls']);
  });

  it('a transactional step aborted by a cancel commits nothing, even what its body writes afterwards', async () => {
    const handle = await client.start('slowCharge', [], { id: 'tx-cancelled' });
    for (let i = 0; i < 200 && !payments.slowStepStarted; i++) await new Promise((r) => setTimeout(r, 10));
    expect(payments.slowStepStarted).toBe(true);
    await client.cancel('tx-cancelled', 'stop');
    await expect(handle.result({ timeout: '60s' })).rejects.toMatchObject({ name: 'RunCancelledError' });
    await new Promise((r) => setTimeout(r, 1_000)); // past the pause: the body tried its second write
    expect(await ledger('tx-cancelled')).toEqual([]);
    expect((await client.status('tx-cancelled'))!.steps).toEqual([]);
  });

  it('serialization failures retry the whole step transaction', async () => {
    const handles = await Promise.all(
      Array.from({ length: 6 }, (_, i) => client.start('count', [], { id: `ser-${i}` })),
    );
    const values = await Promise.all(handles.map((h) => h.result({ timeout: '30s' })));
    expect([...values].sort()).toEqual([1, 2, 3, 4, 5, 6]);
    const [{ value }] = await dataSource.query(`SELECT value FROM counters WHERE id = 1`);
    expect(value).toBe(6);
    // Opened through nestjs-cls here: the bound (the lease, 2 s) is its first statement.
    expect(new Set(payments.transactionSettings)).toEqual(new Set(['serializable 2s']));
  });

  describe('with @nestjs-cls/transactional', () => {
    it('start inside @Transactional() joins that transaction: rollback leaves neither row nor run', async () => {
      const signup = app.get(Signup);
      await expect(signup.register('cls-rollback', true)).rejects.toThrow('signup failed');
      expect(await runCount('cls-rollback')).toBe(0);
      expect(await ledger('cls-rollback')).toEqual([]);

      await signup.register('cls-commit', false);
      await expect(client.handle('cls-commit').result({ timeout: '60s' })).resolves.toBe('debited 5');
      expect(await ledger('cls-commit')).toEqual(['debit', 'debit-cls', 'signup']);
    });

    it('a TransactionHost for the DataSource that the library cannot drive fails the boot', async () => {
      // Looks like an incompatible @nestjs-cls/transactional's host: bound to the DataSource, no withTransaction.
      const IncompatibleHost = class TransactionHost {
        constructor(private readonly source: DataSource) {}
        get tx(): EntityManager {
          return this.source.manager;
        }
      };
      const boot = createDurableApp({
        url: database.url,
        providers: [
          {
            provide: 'IncompatibleHost',
            inject: [getDataSourceToken()],
            useFactory: (source: DataSource) => new IncompatibleHost(source),
          },
        ],
      });
      await expect(boot).rejects.toBeInstanceOf(InvalidOptionsError);
      await expect(boot).rejects.toThrow(/TransactionHost registered for the DataSource of DurableModule/);
    });
  });
});
