import { INestApplicationContext, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import {
  Durable,
  DurableClient,
  InvalidArgumentError,
  OutsideWorkflowError,
  RunCancelledError,
  RunNotFoundError,
  RunStateError,
  Step,
  Workflow,
  WorkflowFailedError,
} from 'nest-durable';
import { createTestDatabase } from './support/database';
import { createDurableApp } from './support/durable-app';
import { dataSourceOf, eventually } from './support/helpers';

@Injectable()
class Flows {
  broken = true;
  executions = new Map<string, number>();

  private count(key: string): void {
    this.executions.set(key, (this.executions.get(key) ?? 0) + 1);
  }

  @Step() async mark(label: string): Promise<string> {
    this.count(`${Durable.context().runId}:${label}`);
    return label;
  }

  @Step({ retry: { maxAttempts: 1 } }) async fragile(): Promise<string> {
    this.count(`${Durable.context().runId}:fragile`);
    if (this.broken) throw new Error('fragile broke');
    return 'fixed';
  }

  @Workflow() async sleeper(ms: number): Promise<number> {
    const before = await this.mark('before');
    await Durable.sleep(ms);
    await this.mark('after');
    return before.length;
  }

  @Workflow() async twoApprovals(): Promise<unknown[]> {
    const first = await Durable.waitForSignal('approve');
    const second = await Durable.waitForSignal('approve');
    const missing = await Durable.waitForSignal('never', { timeout: '300ms' });
    return [first, second, missing];
  }

  @Workflow() async breaker(): Promise<string> {
    await this.mark('first');
    try {
      await this.fragile();
    } catch {
      // caught: replayed as recorded on resume
    }
    return this.fragile();
  }

  @Workflow() async child(x: number): Promise<number> {
    await Durable.sleep('2s');
    return x * 2;
  }

  @Workflow() async parent(): Promise<number> {
    return (await this.child(21)) + 1;
  }

  @Workflow() async parallel(): Promise<string[]> {
    return Promise.all([this.mark('p'), this.mark('p'), this.mark('q')]);
  }
}

describe('waits and control', () => {
  let database: { url: string; drop(): Promise<void> };
  let app: INestApplicationContext;
  let client: DurableClient;
  let flows: Flows;
  let ds: DataSource;

  beforeAll(async () => {
    database = await createTestDatabase();
    app = await createDurableApp({
      url: database.url,
      providers: [Flows],
      durable: { leaseMs: 2_000, heartbeatMs: 500, pollIntervalMs: 100 },
    });
    client = app.get(DurableClient);
    flows = app.get(Flows);
    ds = dataSourceOf(app);
  });

  afterAll(async () => {
    await app?.close();
    await database?.drop();
  });

  const runRow = async (id: string) =>
    (await ds.query(`SELECT status, available_at, executor FROM durable.runs WHERE id = $1`, [id]))[0];

  it('a durable sleep parks the run (no owner) and wakes it, not before its time', async () => {
    const started = Date.now();
    const handle = await client.start('sleeper', [1500], { id: 'sleep-1' });
    const parked = await eventually(
      () => runRow('sleep-1'),
      (row) => row.status === 'sleeping',
    );
    expect(parked.executor).toBeNull();
    await expect(handle.result({ timeout: '60s' })).resolves.toBe(6);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_500);
    const steps = (await client.status('sleep-1'))!.steps;
    expect(steps.map((s) => [s.key, s.kind, s.status])).toEqual([
      ['mark#1', 'step', 'succeeded'],
      ['$sleep#1', 'sleep', 'succeeded'],
      ['mark#2', 'step', 'succeeded'],
    ]);
    expect(flows.executions.get('sleep-1:before')).toBe(1);
  });

  it('signals sent before the wait are kept; two signals are consumed by two waits in order', async () => {
    const handle = await client.start('twoApprovals', [], { id: 'signals-1' });
    await client.signal('signals-1', 'approve', { by: 'alice' });
    await client.signal('signals-1', 'approve');
    await expect(handle.result({ timeout: '60s' })).resolves.toEqual([{ by: 'alice' }, null, undefined]);
    const consumed = await ds.query(
      `SELECT payload, consumed_by FROM durable.signals WHERE run_id = 'signals-1' ORDER BY id`,
    );
    expect(consumed).toEqual([
      { payload: { by: 'alice' }, consumed_by: '$signal:approve#1' },
      { payload: null, consumed_by: '$signal:approve#2' },
    ]);
  });

  it('a waiting run is parked and woken by each signal', async () => {
    const handle = await client.start('twoApprovals', [], { id: 'signals-2' });
    await eventually(
      () => runRow('signals-2'),
      (row) => row.status === 'waiting',
    );
    await client.signal('signals-2', 'approve', 1);
    await eventually(
      () => runRow('signals-2'),
      (row) => row.status === 'waiting',
    );
    await client.signal('signals-2', 'approve', 2);
    await expect(handle.result({ timeout: '60s' })).resolves.toEqual([1, 2, undefined]);
  });

  it('signals to unknown or finished runs and hostile signal names are typed errors', async () => {
    await expect(client.signal('no-such-run', 'approve')).rejects.toBeInstanceOf(RunNotFoundError);
    await expect(client.signal('signals-1', 'approve')).rejects.toBeInstanceOf(RunStateError);
    await expect(client.signal('signals-1', '')).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(client.signal('signals-1', 'x'.repeat(201))).rejects.toBeInstanceOf(InvalidArgumentError);
    const hostile = `'; DROP TABLE durable.runs; --`;
    const handle = await client.start('twoApprovals', [], { id: 'signals-3' });
    await client.signal('signals-3', hostile, 'ignored');
    await client.signal('signals-3', 'approve', 'a');
    await client.signal('signals-3', 'approve', 'b');
    await expect(handle.result({ timeout: '60s' })).resolves.toEqual(['a', 'b', undefined]);
    const [stored] = await ds.query(
      `SELECT name FROM durable.signals WHERE run_id = 'signals-3' ORDER BY id LIMIT 1`,
    );
    expect(stored.name).toBe(hostile);
  });

  it('Durable waits outside a workflow throw', () => {
    expect(() => Durable.sleep('1s')).toThrow(OutsideWorkflowError);
    expect(() => Durable.waitForSignal('x')).toThrow(OutsideWorkflowError);
    expect(() => Durable.sleep('soon')).toThrow(InvalidArgumentError);
  });

  it('resume re-executes the step that failed the run; other outcomes, a caught error included, replay', async () => {
    flows.broken = true;
    const handle = await client.start('breaker', [], { id: 'resume-1' });
    await expect(handle.result({ timeout: '60s' })).rejects.toBeInstanceOf(WorkflowFailedError);
    expect(flows.executions.get('resume-1:fragile')).toBe(2);
    flows.broken = false;
    await client.resume('resume-1');
    await expect(handle.result({ timeout: '60s' })).resolves.toBe('fixed');
    expect(flows.executions.get('resume-1:first')).toBe(1);
    expect(flows.executions.get('resume-1:fragile')).toBe(3);
    const steps = (await client.status('resume-1'))!.steps.map((s) => `${s.key}:${s.status}`);
    expect(steps).toEqual(['mark#1:succeeded', 'fragile#1:failed', 'fragile#2:succeeded']);
    await expect(client.resume('resume-1')).rejects.toBeInstanceOf(RunStateError);
  });

  it('cancel stops a run and its child; resume brings both back', async () => {
    const handle = await client.start('parent', [], { id: 'family' });
    const childId = 'family:child#1';
    await eventually(
      () => runRow(childId),
      (row) => row?.status === 'sleeping',
    );
    expect(await client.cancel('family', 'operator said no')).toBe(true);
    await expect(handle.result({ timeout: '60s' })).rejects.toBeInstanceOf(RunCancelledError);
    expect((await client.status(childId))!.status).toBe('cancelled');
    expect(await client.cancel('family')).toBe(false);
    await client.resume('family');
    await expect(handle.result({ timeout: '60s' })).resolves.toBe(43);
    expect((await client.status(childId))!.status).toBe('succeeded');
    const parentSteps = (await client.status('family'))!.steps;
    expect(parentSteps.map((s) => [s.key, s.kind, s.status, s.output])).toEqual([
      ['child#1', 'child', 'succeeded', 42],
    ]);
  });

  it('parallel steps get occurrences in call order', async () => {
    await expect(flows.parallel()).resolves.toEqual(['p', 'p', 'q']);
    const [{ id }] = await ds.query(`SELECT id FROM durable.runs WHERE workflow = 'parallel'`);
    const steps = (await client.status(id))!.steps.map((s) => [s.key, s.output]);
    expect(steps.sort()).toEqual([
      ['mark#1', 'p'],
      ['mark#2', 'p'],
      ['mark#3', 'q'],
    ]);
  });
});
