import { INestApplicationContext, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import {
  Durable,
  DurableClient,
  InvalidArgumentError,
  OutsideWorkflowError,
  RecordedError,
  ResultTimeoutError,
  RunConflictError,
  RunInfo,
  RunNotFoundError,
  Step,
  StepInfo,
  Workflow,
  WorkflowFailedError,
} from 'nest-durable';
import { createTestDatabase } from './support/database';
import { createDurableApp } from './support/durable-app';
import { dataSourceOf, gate, Gate, requeueRun, sleep, sql, uniqueId, within } from './support/helpers';

/** How long a test waits for a result: generous, as a loaded machine is slow (speed is for npm run bench). */
const WAIT_MS = 60_000;

class PaymentDeclinedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PaymentDeclinedError';
  }
}

class BadRequestError extends Error {
  override name = 'BadRequestError';
}

/** Counts calls per label, so a test can tell an executed step from a replayed one. */
class Calls {
  private readonly counts = new Map<string, number>();
  hit(label: string): number {
    const n = (this.counts.get(label) ?? 0) + 1;
    this.counts.set(label, n);
    return n;
  }
  of(label: string): number {
    return this.counts.get(label) ?? 0;
  }
}

@Injectable()
class Flows {
  readonly calls = new Calls();
  readonly gates = new Map<string, Gate>();
  readonly attemptTimes = new Map<string, number[]>();
  readonly seen = new Map<string, unknown>();
  /** Which steps `evolving` calls: changes "the deployed code" between executions of a run. */
  variant: 'original' | 'renamed' | 'appended' = 'original';

  // --- plain calls ------------------------------------------------------------------------------

  @Workflow()
  async greet(name: string) {
    const upper = await this.upper(name);
    return `hello ${upper}`;
  }

  @Step()
  async upper(text: string) {
    this.calls.hit(`upper:${text}`);
    return text.toUpperCase();
  }

  @Workflow()
  async nesting(tag: string) {
    return this.outer(tag);
  }

  @Step()
  async outer(tag: string) {
    const a = await this.inner(tag);
    const b = await this.inner(tag);
    return { a, b, outerKey: Durable.context().step?.key };
  }

  @Step()
  async inner(tag: string) {
    this.calls.hit(`inner:${tag}`);
    return `inner-${this.calls.of(`inner:${tag}`)}`;
  }

  @Workflow()
  async echo(value: unknown) {
    this.calls.hit(`echo:${JSON.stringify(value)}`);
    return value;
  }

  @Workflow('other')
  async other() {
    return 'other';
  }

  @Workflow()
  async held(label: string) {
    await this.waitAtGate(label);
    return `released ${label}`;
  }

  @Step()
  async waitAtGate(label: string) {
    const g = this.gates.get(label);
    if (g) await g.promise;
    return label;
  }

  // --- failures ---------------------------------------------------------------------------------

  @Workflow()
  async pay(amount: number) {
    if (amount > 100) throw new PaymentDeclinedError(`card declined for ${amount}`);
    return this.charge(amount);
  }

  @Step({ retry: { maxAttempts: 4, initialDelay: '10ms', nonRetryable: [BadRequestError] } })
  async charge(amount: number) {
    this.calls.hit(`charge:${amount}`);
    if (amount < 0) throw new BadRequestError(`negative amount ${amount}`);
    return { charged: amount };
  }

  // --- status shape -----------------------------------------------------------------------------

  @Workflow({ name: 'shaped', version: 3 })
  async shaped(n: number, label: string) {
    const a = await this.first(n);
    const b = await this.second(a);
    const c = await this.third(b, label);
    return { total: c };
  }

  @Step()
  async first(n: number) {
    return n + 1;
  }

  @Step('secondStep')
  async second(n: number) {
    return n * 10;
  }

  @Step()
  async third(n: number, label: string) {
    return `${label}:${n}`;
  }

  // --- list -------------------------------------------------------------------------------------

  @Workflow()
  async listed(i: number) {
    if (i % 5 === 0) throw new Error(`listed ${i} fails`);
    return i;
  }

  // --- retries ----------------------------------------------------------------------------------

  @Workflow()
  async flaky(label: string) {
    return this.flakyStep(label);
  }

  /** Fails its first two attempts; records what the history said before each attempt. */
  @Step({ retry: { maxAttempts: 3, initialDelay: '100ms', backoffFactor: 2 } })
  async flakyStep(label: string) {
    const { attempt, key } = Durable.context().step!;
    const times = this.attemptTimes.get(label) ?? [];
    times.push(Date.now());
    this.attemptTimes.set(label, times);
    const snapshot = await this.client.status(Durable.context().runId);
    this.seen.set(
      `${label}:${attempt}`,
      snapshot?.steps.find((s) => s.key === key),
    );
    if (attempt < 3) throw new Error(`flaky attempt ${attempt}`);
    return `ok after ${attempt}`;
  }

  @Workflow()
  async exhausted(label: string) {
    return this.alwaysFails(label);
  }

  /** Only initialDelay is given: maxAttempts is the default (3). */
  @Step({ retry: { initialDelay: '10ms' } })
  async alwaysFails(label: string): Promise<string> {
    this.calls.hit(`alwaysFails:${label}`);
    throw new Error(`always fails (${label}) attempt ${Durable.context().step!.attempt}`);
  }

  @Workflow()
  async catcher(label: string) {
    let caught: string;
    try {
      await this.boom(label);
      caught = 'nothing';
    } catch (error) {
      caught = `${(error as Error).name}: ${(error as Error).message}`;
    }
    const after = await this.afterBoom(label);
    return { caught, after };
  }

  @Step({ retry: { maxAttempts: 1 } })
  async boom(label: string): Promise<void> {
    this.calls.hit(`boom:${label}`);
    throw new PaymentDeclinedError(`boom ${label}`);
  }

  @Step()
  async afterBoom(label: string) {
    this.calls.hit(`afterBoom:${label}`);
    return `after ${label}`;
  }

  // --- timeouts ---------------------------------------------------------------------------------

  @Workflow()
  async slowOnce(label: string) {
    return this.slowFirstAttempt(label);
  }

  /** The first attempt waits for its AbortSignal (the 80 ms timeout); the second returns at once. */
  @Step({ timeout: '80ms', retry: { maxAttempts: 2, initialDelay: '10ms' } })
  async slowFirstAttempt(label: string) {
    const { attempt, signal } = Durable.context().step!;
    if (attempt === 1) {
      const started = Date.now();
      const reason = await new Promise<unknown>((resolve) => {
        signal.addEventListener('abort', () => resolve(signal.reason), { once: true });
        setTimeout(() => resolve('not aborted'), 5_000).unref();
      });
      this.seen.set(`slowOnce:${label}`, { reason, aborted: signal.aborted, after: Date.now() - started });
      return 'first attempt result (too late)';
    }
    return `attempt ${attempt}`;
  }

  @Workflow()
  async deafStep(label: string) {
    return this.ignoresSignal(label);
  }

  @Step({ timeout: 50, retry: { maxAttempts: 1 } })
  async ignoresSignal(label: string) {
    await new Promise((resolve) => setTimeout(resolve, 3_600_000).unref());
    return label;
  }

  @Workflow({ timeout: '150ms' })
  async shortDeadline(label: string) {
    return this.waitForAbort(label);
  }

  @Workflow({ timeout: '1h' })
  async longDeadline(label: string) {
    return this.waitForAbort(label);
  }

  @Step({ retry: { maxAttempts: 1 } })
  async waitForAbort(label: string) {
    const { signal } = Durable.context().step!;
    const reason = await new Promise<unknown>((resolve) => {
      signal.addEventListener('abort', () => resolve(signal.reason), { once: true });
      setTimeout(() => resolve('not aborted'), 3_000).unref();
    });
    this.seen.set(`abort:${label}`, reason);
    return 'finished without abort';
  }

  @Workflow()
  async patient(ms: number) {
    return this.longTimeoutStep(ms);
  }

  /** 30 days: more than a 32-bit setTimeout can hold (about 24.8 days). */
  @Step({ timeout: '30d', retry: { maxAttempts: 1 } })
  async longTimeoutStep(ms: number) {
    await new Promise((resolve) => setTimeout(resolve, ms));
    return Durable.context().step!.signal.aborted ? 'aborted' : 'not aborted';
  }

  @Workflow({ timeout: '100ms' })
  async tightDeadline(ms: number) {
    return this.pause(ms);
  }

  @Step()
  async pause(ms: number) {
    await new Promise((resolve) => setTimeout(resolve, ms));
    return ms;
  }

  // --- context ----------------------------------------------------------------------------------

  @Workflow({ name: 'contextual', version: '2024-01' })
  async contextual() {
    const inWorkflow = Durable.context();
    const inStep = await this.stepContext();
    return { inWorkflow: { ...inWorkflow, hasStep: inWorkflow.step !== undefined }, inStep };
  }

  @Step()
  async stepContext() {
    const { runId, workflow, version, step } = Durable.context();
    return {
      runId,
      workflow,
      version,
      name: step!.name,
      key: step!.key,
      attempt: step!.attempt,
      aborted: step!.signal.aborted,
      isSignal: step!.signal instanceof AbortSignal,
      idempotencyKey: step!.idempotencyKey,
    };
  }

  // --- values and replay ------------------------------------------------------------------------

  @Workflow()
  async values(label: string) {
    const dated = await this.dated(label);
    const nothing = await this.nothing(label);
    const nul = await this.nullish(label);
    const tricky = await this.tricky(label);
    return {
      atIsDate: dated.at instanceof Date,
      at: dated.at,
      listDates: dated.list.map((d) => d instanceof Date && d.toISOString()),
      nothingIsUndefined: nothing === undefined,
      nullIsNull: nul === null,
      tricky,
    };
  }

  @Step()
  async dated(label: string) {
    this.calls.hit(`dated:${label}`);
    return { at: new Date('2024-02-29T12:34:56.789Z'), list: [new Date(0), new Date(86_400_000)] };
  }

  @Step()
  async nothing(label: string): Promise<undefined> {
    this.calls.hit(`nothing:${label}`);
    return undefined;
  }

  @Step()
  async nullish(label: string) {
    this.calls.hit(`nullish:${label}`);
    return null;
  }

  @Step()
  async tricky(label: string) {
    this.calls.hit(`tricky:${label}`);
    // An object that looks like the codec's own tags must come back as the same plain object.
    return { $durable: 'date', v: 'not a date', arr: [1, undefined, 'x'], nested: { $durable: 'undefined' } };
  }

  @Workflow()
  async fanOut(label: string) {
    return Promise.all([this.part(label, 1, 60), this.part(label, 2, 30), this.part(label, 3, 0)]);
  }

  @Step()
  async part(label: string, n: number, ms: number) {
    this.calls.hit(`part:${label}`);
    await new Promise((resolve) => setTimeout(resolve, ms));
    return { n, key: Durable.context().step!.key };
  }

  @Workflow()
  async evolving(label: string) {
    const one = await this.stepOne(label);
    if (this.variant === 'renamed') return [one, await this.stepThree(label)];
    const two = await this.stepTwo(label);
    if (this.variant === 'appended') return [one, two, await this.stepThree(label)];
    return [one, two];
  }

  @Step()
  async stepOne(label: string) {
    this.calls.hit(`stepOne:${label}`);
    return `one ${label}`;
  }

  @Step()
  async stepTwo(label: string) {
    this.calls.hit(`stepTwo:${label}`);
    return `two ${label}`;
  }

  @Step()
  async stepThree(label: string) {
    this.calls.hit(`stepThree:${label}`);
    return `three ${label}`;
  }

  constructor(private readonly client: DurableClient) {}
}

let db: { url: string; drop(): Promise<void> };
let app: INestApplicationContext;
let client: DurableClient;
let flows: Flows;
let ds: DataSource;

beforeAll(async () => {
  db = await createTestDatabase();
  app = await createDurableApp({ url: db.url, providers: [Flows], durable: { pollIntervalMs: 200 } });
  client = app.get(DurableClient);
  flows = app.get(Flows);
  ds = dataSourceOf(app);
});

afterAll(async () => {
  await app?.close();
  await db?.drop();
});

const countRuns = async (where = 'true', params: unknown[] = []) =>
  (await sql<{ n: number }>(ds, `SELECT count(*)::int AS n FROM durable.runs WHERE ${where}`, params))[0].n;
const countSteps = async (where = 'true', params: unknown[] = []) =>
  (await sql<{ n: number }>(ds, `SELECT count(*)::int AS n FROM durable.steps WHERE ${where}`, params))[0].n;

/** The recorded error of a failed run's result (fails the test if the run did not fail). */
async function failureOf(promise: Promise<unknown>): Promise<WorkflowFailedError> {
  const error = await promise.then(
    (value) => {
      throw new Error(`expected the run to fail, it returned ${JSON.stringify(value)}`);
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(WorkflowFailedError);
  return error as WorkflowFailedError;
}

/** Re-executes a run from its history (as a takeover does) and waits for its end. */
async function replay<R>(id: string): Promise<RunInfo<R>> {
  await requeueRun(ds, id);
  await within(
    5_000,
    client
      .handle(id)
      .result()
      .catch(() => undefined),
    `replay of ${id}`,
  );
  const info = await client.status<R>(id);
  expect(info?.attempts).toBe(2);
  return info!;
}

describe('calling decorated methods', () => {
  it('a direct call of a @Workflow method runs it durably and returns its result', async () => {
    await expect(flows.greet('ann')).resolves.toBe('hello ANN');

    const { runs } = await client.list({ workflow: 'greet' });
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ status: 'succeeded', input: ['ann'], output: 'hello ANN', attempts: 1 });
    const info = await client.status(runs[0].id);
    expect(info!.steps.map((s) => [s.key, s.output])).toEqual([['upper#1', 'ANN']]);
  });

  it('a @Step method called outside a workflow is a plain call that writes nothing', async () => {
    const [runsBefore, stepsBefore] = [await countRuns(), await countSteps()];
    await expect(flows.upper('plain')).resolves.toBe('PLAIN');
    await expect(flows.upper('plain')).resolves.toBe('PLAIN');
    expect(flows.calls.of('upper:plain')).toBe(2);
    expect([await countRuns(), await countSteps()]).toEqual([runsBefore, stepsBefore]);
  });

  it('a @Step called inside another step is a plain call: only the outer step is recorded', async () => {
    const handle = await client.start(flows.nesting, ['n1']);
    await expect(handle.result()).resolves.toEqual({ a: 'inner-1', b: 'inner-2', outerKey: 'outer#1' });
    const info = (await handle.status())!;
    expect(info.steps.map((s) => s.key)).toEqual(['outer#1']);
    expect(await countSteps('run_id = $1', [handle.id])).toBe(1);
    expect(flows.calls.of('inner:n1')).toBe(2);
  });

  it('start(service.method) and start(Class.prototype.method) resolve the workflow from the method', async () => {
    const a = await client.start(flows.echo, [{ via: 'instance' }]);
    const b = await client.start(Flows.prototype.echo, [{ via: 'prototype' }]);
    await expect(a.result()).resolves.toEqual({ via: 'instance' });
    await expect(b.result()).resolves.toEqual({ via: 'prototype' });
    expect((await a.status())!.workflow).toBe('echo');
    expect((await b.status())!.workflow).toBe('echo');
  });

  it('start() of something that is not a workflow is an InvalidArgumentError', async () => {
    await expect(client.start(flows.upper, ['x'])).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(client.start((() => 1) as () => number, [])).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(client.start('echo', 'not an array' as unknown as unknown[])).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
  });
});

describe('run ids are idempotency keys', () => {
  it('start with an existing id returns the same run, whatever the arguments', async () => {
    const id = uniqueId('same');
    const first = await client.start('echo', ['first'], { id });
    const second = await client.start('echo', ['second'], { id });
    expect(first.id).toBe(id);
    expect(second.id).toBe(id);
    await expect(first.result()).resolves.toBe('first');
    await expect(second.result()).resolves.toBe('first');

    const third = await client.start('echo', ['third'], { id }); // after the run ended
    await expect(third.result()).resolves.toBe('first');
    expect(await countRuns('id = $1', [id])).toBe(1);
    expect((await third.status())!.input).toEqual(['first']);
    expect(flows.calls.of('echo:"first"')).toBe(1);
    expect(flows.calls.of('echo:"second"') + flows.calls.of('echo:"third"')).toBe(0);
  });

  it('start with an existing id under another workflow name throws RunConflictError', async () => {
    const id = uniqueId('conflict');
    await (await client.start('echo', [1], { id })).result();

    const registered = client.start('other', [], { id }); // registered here: the inline (owned) insert path
    await expect(registered).rejects.toBeInstanceOf(RunConflictError);
    await expect(registered).rejects.toThrow(id);
    // Not registered here: the pending insert path must detect the conflict too.
    await expect(client.start('registeredElsewhere', [], { id })).rejects.toBeInstanceOf(RunConflictError);
    const info = await client.status(id);
    expect(info).toMatchObject({ workflow: 'echo', status: 'succeeded', output: 1 });
    expect(await countRuns('id = $1', [id])).toBe(1);
  });
});

describe('handle.result()', () => {
  it('resolves with the output of a succeeded run, also from a fresh handle', async () => {
    const handle = await client.start('pay', [42]);
    await expect(handle.result()).resolves.toEqual({ charged: 42 });
    await expect(client.handle(handle.id).result()).resolves.toEqual({ charged: 42 });
  });

  it('rejects with WorkflowFailedError whose cause has the original error name and message', async () => {
    const handle = await client.start('pay', [500]);
    const error = await failureOf(handle.result());
    expect(error.runId).toBe(handle.id);
    expect(error.cause).toBeInstanceOf(RecordedError);
    expect(error.cause.name).toBe('PaymentDeclinedError');
    expect(error.cause.message).toBe('card declined for 500');
    expect(error.message).toContain('card declined for 500');
    const info = (await handle.status())!;
    expect(info.status).toBe('failed');
    expect(info.error).toMatchObject({ name: 'PaymentDeclinedError', message: 'card declined for 500' });
    expect(info.output).toBeUndefined();
  });

  it('rejects with ResultTimeoutError when its timeout passes, and the run goes on to succeed', async () => {
    const label = uniqueId('held');
    flows.gates.set(label, gate());
    const handle = await client.start('held', [label]);
    const started = Date.now();
    await expect(handle.result({ timeout: 100 })).rejects.toBeInstanceOf(ResultTimeoutError);
    expect(Date.now() - started).toBeGreaterThanOrEqual(95);
    await expect(handle.result({ timeout: '50ms' })).rejects.toBeInstanceOf(ResultTimeoutError);
    const running = (await handle.status())!;
    expect(running.status).toBe('running');
    expect(running.steps).toEqual([]); // a step still executing has no row

    flows.gates.get(label)!.open();
    await expect(within(WAIT_MS, handle.result())).resolves.toBe(`released ${label}`);
    expect((await handle.status())!.status).toBe('succeeded');
  });

  it('resolves with null for a run that returned null, from any handle', async () => {
    const handle = await client.start('echo', [null]);
    await expect(handle.result()).resolves.toBeNull(); // ended in this process: in-memory outcome
    await expect(client.handle(handle.id).result()).resolves.toBeNull(); // ended earlier: read from the row
    expect((await handle.status())!.output).toBeNull();

    const withNullStep = await client.start('values', [uniqueId('null-step')]);
    await withNullStep.result();
    const nullish = (await withNullStep.status())!.steps.find((s) => s.key === 'nullish#1');
    expect(nullish?.output).toBeNull(); // a step that returned null shows null, not undefined
  });

  it('of an unknown run rejects with RunNotFoundError; status() of one is null', async () => {
    await expect(client.handle('no-such-run').result()).rejects.toBeInstanceOf(RunNotFoundError);
    await expect(client.handle('no-such-run').status()).resolves.toBeNull();
    await expect(client.status('no-such-run')).resolves.toBeNull();
  });
});

describe('status()', () => {
  it('describes the run and its steps in the order they started', async () => {
    const before = new Date();
    const handle = await client.start('shaped', [4, 'lbl']);
    await handle.result();
    const info = (await handle.status())!;

    expect(info).toEqual({
      id: handle.id,
      workflow: 'shaped',
      version: '3',
      status: 'succeeded',
      input: [4, 'lbl'],
      output: { total: 'lbl:50' },
      error: null,
      attempts: 1,
      compensating: false,
      createdAt: expect.any(Date),
      updatedAt: expect.any(Date),
      steps: [
        step('first#1', 'first', 5),
        step('secondStep#1', 'secondStep', 50),
        step('third#1', 'third', 'lbl:50'),
      ],
    });
    expect(info.createdAt.getTime()).toBeGreaterThanOrEqual(before.getTime() - 1_000);
    expect(info.updatedAt.getTime()).toBeGreaterThanOrEqual(info.createdAt.getTime());
    for (const s of info.steps) expect(s.finishedAt!.getTime()).toBeGreaterThanOrEqual(s.startedAt.getTime());
    const starts = info.steps.map((s) => s.startedAt.getTime());
    expect([...starts].sort((a, b) => a - b)).toEqual(starts);
  });

  function step(key: string, name: string, output: unknown): StepInfo {
    return {
      key,
      name,
      kind: 'step',
      status: 'succeeded',
      output,
      error: null,
      attempts: 1,
      startedAt: expect.any(Date),
      finishedAt: expect.any(Date),
    };
  }
});

describe('list()', () => {
  const ids = new Set<string>();
  let between: Date; // after the transaction's 12 runs, before the other 13

  beforeAll(async () => {
    // 12 runs inserted in one transaction share one created_at: paging must break the tie by id.
    await ds.transaction(async (manager) => {
      for (let i = 1; i <= 12; i++)
        ids.add((await client.start('listed', [i], { manager, id: `listed-tx-${i}` })).id);
    });
    // Filters compare at millisecond precision (that of a JS Date): keep a millisecond on each side.
    await sleep(2);
    between = new Date();
    await sleep(2);
    for (let i = 13; i <= 25; i++) ids.add((await client.start('listed', [i])).id);
    await Promise.all(
      [...ids].map((id) =>
        within(
          10_000,
          client
            .handle(id)
            .result()
            .catch(() => undefined),
        ),
      ),
    );
  });

  it('pages through 25 runs newest first with next/after, with no duplicates or gaps', async () => {
    const seen: string[] = [];
    const pageSizes: number[] = [];
    let after: string | undefined;
    let previous: { createdAt: Date; id: string } | undefined;
    do {
      const page = await client.list({ workflow: 'listed', limit: 7, after });
      pageSizes.push(page.runs.length);
      for (const run of page.runs) {
        seen.push(run.id);
        // Newest first. Ties (same microsecond, e.g. one transaction) are broken by id in the database's
        // collation, and createdAt has millisecond precision here: only the time order is checked.
        if (previous) expect(previous.createdAt.getTime()).toBeGreaterThanOrEqual(run.createdAt.getTime());
        previous = run;
      }
      after = page.next;
    } while (after);
    expect(pageSizes).toEqual([7, 7, 7, 4]);
    expect(seen).toHaveLength(25);
    expect(new Set(seen)).toEqual(ids);
  });

  it('filters by status and workflow, and honours limit', async () => {
    const failed = await client.list({ workflow: 'listed', status: 'failed' });
    expect(failed.runs.map((r) => r.input[0]).sort((a, b) => Number(a) - Number(b))).toEqual([
      5, 10, 15, 20, 25,
    ]);
    expect(
      failed.runs.every((r) => r.status === 'failed' && r.error?.message === `listed ${r.input[0]} fails`),
    ).toBe(true);
    expect(failed.next).toBeUndefined();

    const succeeded = await client.list({ workflow: 'listed', status: 'succeeded' });
    expect(succeeded.runs).toHaveLength(20);
    expect(succeeded.runs.every((r) => r.output === r.input[0])).toBe(true);
    const both = await client.list({ workflow: 'listed', status: ['failed', 'succeeded'] });
    expect(both.runs).toHaveLength(25);

    const one = await client.list({ workflow: 'listed', limit: 1 });
    expect(one.runs).toHaveLength(1);
    expect(one.next).toEqual(expect.any(String));
    expect((await client.list({ workflow: 'listed', limit: 25 })).next).toBeUndefined();

    await (await client.start('echo', ['not listed'])).result();
    const all = await client.list({ limit: 1000 });
    expect(all.runs.some((r) => r.workflow !== 'listed')).toBe(true);
    expect((await client.list({ workflow: 'noSuchWorkflow' })).runs).toEqual([]);
  });

  it('filters by creation time', async () => {
    const after = await client.list({ workflow: 'listed', createdAfter: between });
    expect(after.runs.map((r) => r.input[0]).sort((a, b) => Number(a) - Number(b))).toEqual(
      Array.from({ length: 13 }, (_, i) => i + 13),
    );
    const before = await client.list({ workflow: 'listed', createdBefore: between });
    expect(before.runs.map((r) => r.id).sort()).toEqual(
      Array.from({ length: 12 }, (_, i) => `listed-tx-${i + 1}`).sort(),
    );
    expect(await client.list({ workflow: 'listed', createdBefore: new Date(0) })).toEqual({
      runs: [],
      next: undefined,
    });
    expect(
      (await client.list({ workflow: 'listed', createdAfter: new Date(Date.now() + 60_000) })).runs,
    ).toEqual([]);
  });

  it("createdAfter a run's own createdAt excludes that run (bounds are exclusive at the precision returned)", async () => {
    const [newest] = (await client.list({ workflow: 'listed', limit: 1 })).runs;
    const after = await client.list({ workflow: 'listed', createdAfter: newest.createdAt });
    expect(after.runs.map((r) => r.id)).not.toContain(newest.id);
  });

  it('rejects an invalid limit, status or cursor with InvalidArgumentError', async () => {
    for (const limit of [0, -1, 1.5, 1001, Number.NaN]) {
      await expect(client.list({ limit })).rejects.toBeInstanceOf(InvalidArgumentError);
    }
    await expect(client.list({ status: 'bogus' as never })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(client.list({ after: 'not-a-cursor' })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(client.list({ after: Buffer.from('[1,2]').toString('base64url') })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
  });
});

describe('retries', () => {
  it('records every attempt and backs off exponentially (100 ms, then 200 ms, with jitter)', async () => {
    const label = uniqueId('flaky');
    const handle = await client.start('flaky', [label]);
    await expect(within(WAIT_MS, handle.result())).resolves.toBe('ok after 3');

    const [t1, t2, t3] = flows.attemptTimes.get(label)!;
    // Equal jitter: each delay is at least half of initialDelay * factor^(attempt-1) (the upper bounds
    // are retry-delay.spec.ts's; here a loaded machine only makes them longer).
    expect(t2 - t1).toBeGreaterThanOrEqual(45);
    expect(t3 - t2).toBeGreaterThanOrEqual(95);

    // Before each retry, the failed attempt was already recorded as 'retrying'.
    expect(flows.seen.get(`${label}:1`)).toBeUndefined();
    expect(flows.seen.get(`${label}:2`)).toMatchObject({
      status: 'retrying',
      attempts: 1,
      error: { message: 'flaky attempt 1' },
    });
    expect(flows.seen.get(`${label}:3`)).toMatchObject({
      status: 'retrying',
      attempts: 2,
      error: { message: 'flaky attempt 2' },
    });
    const [flakyStep] = (await handle.status())!.steps;
    expect(flakyStep).toMatchObject({
      key: 'flakyStep#1',
      status: 'succeeded',
      attempts: 3,
      output: 'ok after 3',
    });
  });

  it('fails the run once the attempts are exhausted (default maxAttempts 3)', async () => {
    const label = uniqueId('exhausted');
    const handle = await client.start('exhausted', [label]);
    const error = await failureOf(within(WAIT_MS, handle.result()));
    expect(error.cause.message).toBe(`always fails (${label}) attempt 3`);
    expect(flows.calls.of(`alwaysFails:${label}`)).toBe(3);
    const info = (await handle.status())!;
    expect(info.steps).toEqual([
      expect.objectContaining({
        key: 'alwaysFails#1',
        status: 'failed',
        attempts: 3,
        error: expect.objectContaining({ name: 'Error' }),
      }),
    ]);
  });

  it('fails at once on a nonRetryable error: one attempt', async () => {
    const handle = await client.start('pay', [-5]);
    const error = await failureOf(within(WAIT_MS, handle.result()));
    expect(error.cause.name).toBe('BadRequestError');
    expect(error.cause.message).toBe('negative amount -5');
    expect(flows.calls.of('charge:-5')).toBe(1);
    const [charge] = (await handle.status())!.steps;
    expect(charge).toMatchObject({
      key: 'charge#1',
      status: 'failed',
      attempts: 1,
      error: { name: 'BadRequestError' },
    });
  });

  it('replays a failed step that the workflow caught as the same error, without running it again', async () => {
    const label = uniqueId('catch');
    const handle = await client.start('catcher', [label]);
    const expected = { caught: `PaymentDeclinedError: boom ${label}`, after: `after ${label}` };
    await expect(handle.result()).resolves.toEqual(expected);
    const before = (await handle.status())!;
    expect(before.steps.map((s) => [s.key, s.status, s.attempts])).toEqual([
      ['boom#1', 'failed', 1],
      ['afterBoom#1', 'succeeded', 1],
    ]);

    const replayed = await replay(handle.id);
    expect(replayed.status).toBe('succeeded');
    expect(replayed.output).toEqual(expected);
    expect(replayed.steps).toEqual(before.steps);
    expect(flows.calls.of(`boom:${label}`)).toBe(1);
    expect(flows.calls.of(`afterBoom:${label}`)).toBe(1);
  });
});

describe('timeouts', () => {
  it('a step timeout fires the step AbortSignal and counts as a failed attempt', async () => {
    const label = uniqueId('slow');
    const started = Date.now();
    const handle = await client.start('slowOnce', [label]);
    await expect(within(WAIT_MS, handle.result())).resolves.toBe('attempt 2');
    expect(Date.now() - started).toBeGreaterThanOrEqual(80);

    const seen = flows.seen.get(`slowOnce:${label}`) as { reason: Error; aborted: boolean; after: number };
    expect(seen.aborted).toBe(true);
    expect(seen.reason).toBeInstanceOf(Error);
    expect(seen.reason.name).toBe('StepTimeoutError');
    expect(seen.after).toBeGreaterThanOrEqual(75);
    expect((await handle.status())!.steps).toEqual([
      expect.objectContaining({
        key: 'slowFirstAttempt#1',
        status: 'succeeded',
        attempts: 2,
        output: 'attempt 2',
      }),
    ]);
  });

  it('a step that ignores its signal still fails at its timeout', async () => {
    // The step would run for an hour: failing within the wait means failing at its 50 ms timeout.
    const handle = await client.start('deafStep', ['deaf']);
    const error = await failureOf(within(WAIT_MS, handle.result()));
    expect(error.cause.name).toBe('StepTimeoutError');
    expect((await handle.status())!.steps).toEqual([
      expect.objectContaining({ key: 'ignoresSignal#1', status: 'failed', attempts: 1 }),
    ]);
  });

  it('@Workflow({ timeout }) fails the run with WorkflowTimeoutError and aborts the step in flight', async () => {
    const label = uniqueId('deadline');
    const started = Date.now();
    const handle = await client.start('shortDeadline', [label]);
    const error = await failureOf(within(WAIT_MS, handle.result()));
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(error.cause.name).toBe('WorkflowTimeoutError');
    expect((flows.seen.get(`abort:${label}`) as Error).name).toBe('WorkflowTimeoutError');
    const info = (await handle.status())!;
    expect(info).toMatchObject({ status: 'failed', error: { name: 'WorkflowTimeoutError' } });
  });

  it('start({ timeout }) overrides a longer @Workflow timeout', async () => {
    const label = uniqueId('override-short');
    const started = Date.now();
    const handle = await client.start('longDeadline', [label], { timeout: '100ms' });
    // Its @Workflow timeout is an hour: failing within the wait means the start option won.
    const error = await failureOf(within(WAIT_MS, handle.result()));
    expect(Date.now() - started).toBeGreaterThanOrEqual(95);
    expect(error.cause.name).toBe('WorkflowTimeoutError');
  });

  it('start({ timeout }) overrides a shorter @Workflow timeout', async () => {
    const tooSlowForDecorator = await client.start('tightDeadline', [300]);
    expect((await failureOf(within(WAIT_MS, tooSlowForDecorator.result()))).cause.name).toBe(
      'WorkflowTimeoutError',
    );
    const handle = await client.start('tightDeadline', [300], { timeout: '60s' });
    await expect(within(WAIT_MS, handle.result())).resolves.toBe(300);
  });
});

describe('long durations', () => {
  it('a step timeout longer than 24.8 days does not fire at once', async () => {
    const handle = await client.start('patient', [50]);
    await expect(within(WAIT_MS, handle.result())).resolves.toBe('not aborted');
  });

  it('handle.result({ timeout }) longer than 24.8 days waits for the run', async () => {
    const label = uniqueId('long-wait');
    flows.gates.set(label, gate());
    const handle = await client.start('held', [label]);
    const waiting = handle.result({ timeout: '30d' });
    setTimeout(() => flows.gates.get(label)!.open(), 100);
    await expect(within(WAIT_MS, waiting)).resolves.toBe(`released ${label}`);
  });

  it('start({ timeout }) longer than 24.8 days does not fail the run at once', async () => {
    const handle = await client.start('tightDeadline', [50], { timeout: '30d' });
    await expect(within(WAIT_MS, handle.result())).resolves.toBe(50);
  });
});

describe('Durable.context()', () => {
  it('throws OutsideWorkflowError outside a workflow', () => {
    expect(() => Durable.context()).toThrow(OutsideWorkflowError);
    expect(() => Durable.manager()).toThrow(OutsideWorkflowError);
  });

  it('describes the run in the workflow body, and the step inside a step', async () => {
    const handle = await client.start('contextual', []);
    const result = await handle.result();
    expect(result).toEqual({
      inWorkflow: { runId: handle.id, workflow: 'contextual', version: '2024-01', hasStep: false },
      inStep: {
        runId: handle.id,
        workflow: 'contextual',
        version: '2024-01',
        name: 'stepContext',
        key: 'stepContext#1',
        attempt: 1,
        aborted: false,
        isSignal: true,
        idempotencyKey: `${handle.id}:stepContext#1`,
      },
    });
  });
});

describe('replay', () => {
  it('Dates round-trip and undefined replays as undefined, also from the history', async () => {
    const label = uniqueId('values');
    const handle = await client.start('values', [label]);
    const expected = {
      atIsDate: true,
      at: new Date('2024-02-29T12:34:56.789Z'),
      listDates: ['1970-01-01T00:00:00.000Z', '1970-01-02T00:00:00.000Z'],
      nothingIsUndefined: true,
      nullIsNull: true,
      tricky: {
        $durable: 'date',
        v: 'not a date',
        arr: [1, undefined, 'x'],
        nested: { $durable: 'undefined' },
      },
    };
    const first = await handle.result();
    expect(first).toEqual(expected);
    expect((first as typeof expected).at).toBeInstanceOf(Date);

    const info = await replay<typeof expected>(handle.id);
    expect(info.status).toBe('succeeded');
    expect(info.output).toEqual(expected);
    expect(info.output!.at).toBeInstanceOf(Date);
    expect(info.output!.tricky.arr).toHaveLength(3);
    for (const name of ['dated', 'nothing', 'nullish', 'tricky'])
      expect(flows.calls.of(`${name}:${label}`)).toBe(1);
    const outputs = Object.fromEntries(info.steps.map((s) => [s.key, s.output]));
    expect(outputs['dated#1']).toEqual({ at: expected.at, list: [new Date(0), new Date(86_400_000)] });
    expect('nothing#1' in outputs && outputs['nothing#1'] === undefined).toBe(true);
  });

  it('parallel steps (Promise.all) get occurrences in call order, also on replay', async () => {
    const label = uniqueId('fan');
    const handle = await client.start('fanOut', [label]);
    const expected = [
      { n: 1, key: 'part#1' },
      { n: 2, key: 'part#2' },
      { n: 3, key: 'part#3' },
    ];
    await expect(handle.result()).resolves.toEqual(expected);
    const steps = (await handle.status())!.steps;
    expect(Object.fromEntries(steps.map((s) => [s.key, s.output]))).toEqual({
      'part#1': expected[0],
      'part#2': expected[1],
      'part#3': expected[2],
    });

    const info = await replay(handle.id);
    expect(info).toMatchObject({ status: 'succeeded', output: expected });
    expect(flows.calls.of(`part:${label}`)).toBe(3);
  });

  it('a step call that does not match the history fails the run with ReplayMismatchError, history untouched', async () => {
    const label = uniqueId('evolve');
    flows.variant = 'original';
    const handle = await client.start('evolving', [label]);
    await expect(handle.result()).resolves.toEqual([`one ${label}`, `two ${label}`]);
    const recorded = (await handle.status())!.steps;

    flows.variant = 'renamed'; // "deploy" code that calls stepThree where the history has stepTwo
    try {
      await requeueRun(ds, handle.id);
      const error = await failureOf(within(WAIT_MS, client.handle(handle.id).result()));
      expect(error.cause.name).toBe('ReplayMismatchError');
      expect(error.cause.message).toContain('"stepTwo#1"');
      expect(error.cause.message).toContain('"stepThree#1"');
    } finally {
      flows.variant = 'original';
    }
    const info = await client.status(handle.id);
    expect(info).toMatchObject({ status: 'failed', attempts: 2, error: { name: 'ReplayMismatchError' } });
    expect(info!.steps).toEqual(recorded);
    expect(flows.calls.of(`stepOne:${label}`)).toBe(1);
    expect(flows.calls.of(`stepTwo:${label}`)).toBe(1);
    expect(flows.calls.of(`stepThree:${label}`)).toBe(0);
    expect(await countSteps('run_id = $1', [handle.id])).toBe(2);

    // With the matching code deployed again, resume completes the run from its intact history.
    await client.resume(handle.id);
    await expect(within(WAIT_MS, client.handle(handle.id).result())).resolves.toEqual([
      `one ${label}`,
      `two ${label}`,
    ]);
    expect((await client.status(handle.id))!.steps).toEqual(recorded);
    expect([flows.calls.of(`stepOne:${label}`), flows.calls.of(`stepTwo:${label}`)]).toEqual([1, 1]);
  });

  it('steps appended after the recorded ones execute normally on replay', async () => {
    const label = uniqueId('append');
    flows.variant = 'original';
    const handle = await client.start('evolving', [label]);
    await handle.result();
    flows.variant = 'appended';
    let info: RunInfo;
    try {
      info = await replay(handle.id);
    } finally {
      flows.variant = 'original';
    }
    expect(info).toMatchObject({
      status: 'succeeded',
      output: [`one ${label}`, `two ${label}`, `three ${label}`],
    });
    expect(info.steps.map((s) => s.key)).toEqual(['stepOne#1', 'stepTwo#1', 'stepThree#1']);
    expect(
      [`stepOne:${label}`, `stepTwo:${label}`, `stepThree:${label}`].map((k) => flows.calls.of(k)),
    ).toEqual([1, 1, 1]);
  });
});
