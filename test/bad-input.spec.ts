import { INestApplicationContext, Injectable } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import {
  DurableClient,
  DurableModule,
  DurableModuleOptions,
  InvalidArgumentError,
  InvalidOptionsError,
  NonSerializableError,
  PayloadTooLargeError,
  Step,
  Workflow,
  WorkflowFailedError,
} from 'nest-durable';
import { createTestDatabase } from './support/database';
import { createDurableApp } from './support/durable-app';
import { dataSourceOf, sleep, sql, uniqueId, within } from './support/helpers';

/** Values a step can return that cannot be stored as JSON and read back as the same value. */
const circular: Record<string, unknown> = { name: 'loop' };
circular.self = circular;
const UNSTORABLE: Record<string, { value: () => unknown; path: string }> = {
  function: { value: () => ({ ok: 1, fn: () => 1 }), path: '$.fn' },
  circular: { value: () => ({ wrapper: circular }), path: '$.wrapper.self' },
  bigint: { value: () => ({ total: 10n }), path: '$.total' },
  map: { value: () => ({ lookup: new Map([['a', 1]]) }), path: '$.lookup' },
  set: { value: () => [1, new Set([1])], path: '$[1]' },
  symbol: { value: () => ({ tag: Symbol('t') }), path: '$.tag' },
  nan: { value: () => ({ ratio: Number.NaN }), path: '$.ratio' },
  infinity: { value: () => [Number.POSITIVE_INFINITY], path: '$[0]' },
  invalidDate: { value: () => ({ at: new Date('nope') }), path: '$.at' },
  regexp: { value: () => ({ pattern: /ab+c/gi }), path: '$.pattern' },
  url: { value: () => ({ link: new URL('https://example.com/a?b=c') }), path: '$.link' },
};
/** Strings JSON accepts but PostgreSQL's jsonb cannot store. */
const UNSTORABLE_STRINGS: Record<string, { value: () => unknown; path: string }> = {
  nulChar: { value: () => ({ text: 'a\u0000b' }), path: '$.text' },
  loneSurrogate: { value: () => ({ text: 'x\ud800y' }), path: '$.text' },
};

@Injectable()
class Steps {
  readonly calls = new Map<string, number>();
  private hit(key: string) {
    this.calls.set(key, (this.calls.get(key) ?? 0) + 1);
  }

  @Workflow()
  async produce(kind: string) {
    const before = await this.prepare(kind);
    const value = await this.emit(kind);
    await this.finishUp(kind);
    return { before, value };
  }

  @Step()
  async prepare(kind: string) {
    this.hit(`prepare:${kind}`);
    return `prepared ${kind}`;
  }

  /** The default retry policy (3 attempts, 1 s apart): a retried value would take seconds and show in attempts. */
  @Step()
  async emit(kind: string) {
    this.hit(`emit:${kind}`);
    return UNSTORABLE[kind].value();
  }

  /** Few, fast retries: only for values that may (wrongly) be retried, to keep a failure fast. */
  @Workflow()
  async produceString(kind: string) {
    const before = await this.prepare(kind);
    const value = await this.emitString(kind);
    return { before, value };
  }

  @Step({ retry: { maxAttempts: 2, initialDelay: '10ms' } })
  async emitString(kind: string) {
    this.hit(`emitString:${kind}`);
    return UNSTORABLE_STRINGS[kind].value();
  }

  @Step()
  async finishUp(kind: string) {
    this.hit(`finishUp:${kind}`);
    return 'done';
  }

  @Workflow()
  async returnsFunction() {
    await this.prepare('returnsFunction');
    return { callback: () => 'nope' };
  }

  @Workflow()
  async echo(value: unknown) {
    return value;
  }

  @Workflow()
  async big(inputSize: number, outputSize: number, stepOutputSize: number) {
    const a = await this.sized(stepOutputSize);
    return { a: a.length, pad: 'o'.repeat(outputSize) };
  }

  @Step()
  async sized(size: number) {
    return 's'.repeat(size);
  }
}

let db: { url: string; drop(): Promise<void> };
let app: INestApplicationContext;
let client: DurableClient;
let ds: DataSource;

beforeAll(async () => {
  db = await createTestDatabase();
  app = await createDurableApp({ url: db.url, providers: [Steps], durable: { pollIntervalMs: 50 } });
  client = app.get(DurableClient);
  ds = dataSourceOf(app);
});

afterAll(async () => {
  await app?.close();
  await db?.drop();
});

const runRows = async (id: string, schema = 'durable') =>
  sql<{ id: string; workflow: string; status: string }>(
    ds,
    `SELECT id, workflow, status FROM "${schema}".runs WHERE id = $1`,
    [id],
  );
const countRuns = async (schema = 'durable') =>
  (await sql<{ n: number }>(ds, `SELECT count(*)::int AS n FROM "${schema}".runs`))[0].n;

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

describe('DurableModule options', () => {
  async function bootError(
    durable: DurableModuleOptions | Record<string, unknown>,
    migrationSchema?: string,
  ) {
    const error = await createDurableApp({
      url: db.url,
      providers: [],
      durable: durable as DurableModuleOptions,
      migrationSchema,
      logLevels: [],
    }).then(
      async (booted) => {
        await booted.close();
        throw new Error(`boot succeeded with ${JSON.stringify(durable)}`);
      },
      (e: unknown) => e as Error,
    );
    expect(error).toBeInstanceOf(InvalidOptionsError);
    return error;
  }

  it.each([
    ['schema', { schema: 'Robert"; drop table durable.runs; --' }],
    ['schema', { schema: 'UpperCase' }],
    ['schema', { schema: '' }],
    ['schema', { schema: 'a'.repeat(64) }],
    ['concurrency', { concurrency: 0 }],
    ['concurrency', { concurrency: 2.5 }],
    ['leaseMs', { leaseMs: 'x' }],
    ['leaseMs', { leaseMs: Number.NaN }],
    ['heartbeatMs', { leaseMs: 1_000, heartbeatMs: 501 }],
    ['heartbeatMs', { heartbeatMs: -1 }],
    ['pollIntervalMs', { pollIntervalMs: 0 }],
    ['worker', { worker: 'yes' }],
    ['recoverOnStartup', { recoverOnStartup: 1 }],
    ['executorId', { executorId: '' }],
    ['executorId', { executorId: 'e'.repeat(201) }],
    ['maxPayloadBytes', { maxPayloadBytes: 0 }],
    ['conccurency', { conccurency: 5 }],
  ])('rejects an invalid %s at boot with InvalidOptionsError naming it (%j)', async (option, durable) => {
    // The migrations run on the default schema, so the module itself must catch a bad schema.
    const error = await bootError(durable, 'durable');
    expect(error.message).toContain(`"${option}"`);
  });

  it('accepts heartbeatMs of exactly half of leaseMs', async () => {
    const booted = await createDurableApp({
      url: db.url,
      providers: [],
      durable: { leaseMs: 1_000, heartbeatMs: 500, worker: false },
    });
    await booted.close();
  });

  it('durableMigrations() rejects an unsafe schema before any SQL runs', async () => {
    const error = await bootError({ schema: 'x"; drop schema durable cascade; --' });
    expect(error.message).toContain('"schema"');
    const tables = await sql(
      ds,
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'durable' ORDER BY 1`,
    );
    expect(tables.map((t) => t.table_name)).toEqual(expect.arrayContaining(['runs', 'steps']));
  });

  it('forRootAsync validates the options its factory returns', async () => {
    const error = await createDurableApp({
      url: db.url,
      providers: [],
      logLevels: [],
      durableModule: DurableModule.forRootAsync({ useFactory: async () => ({ concurrency: -3 }) }),
    }).then(
      async (booted) => {
        await booted.close();
        return undefined;
      },
      (e: unknown) => e as Error,
    );
    expect(error).toBeInstanceOf(InvalidOptionsError);
    expect(error!.message).toContain('"concurrency"');
  });

  it('fails at boot when ScheduleModule.forRoot() is missing, saying so', async () => {
    const error = await createDurableApp({ url: db.url, providers: [], schedule: false, logLevels: [] }).then(
      async (booted) => {
        await booted.close();
        return undefined;
      },
      (e: unknown) => e as Error,
    );
    expect(error).toBeInstanceOf(InvalidOptionsError);
    expect(error!.message).toContain('ScheduleModule.forRoot()');
  });

  it('rejects a DataSource that is not PostgreSQL', async () => {
    // cockroachdb is another TypeORM driver built on `pg`; manualInitialization keeps it from connecting.
    const error = await Test.createTestingModule({
      imports: [
        TypeOrmModule.forRoot({ type: 'cockroachdb', url: db.url, manualInitialization: true }),
        ScheduleModule.forRoot(),
        DurableModule.forRoot({}),
      ],
    })
      .compile()
      .then(
        async (moduleRef) => {
          await moduleRef.close();
          return undefined;
        },
        (e: unknown) => e as Error,
      );
    expect(error).toBeInstanceOf(InvalidOptionsError);
    expect(error!.message).toContain('PostgreSQL');
    expect(error!.message).toContain('cockroachdb');
  });
});

describe('non-serializable values', () => {
  it.each(Object.keys(UNSTORABLE))(
    'a step output with a %s fails the run with NonSerializableError naming step and path, not retried',
    async (kind) => {
      const handle = await client.start('produce', [kind]);
      const error = await failureOf(within(60_000, handle.result()));
      expect(error.cause.name).toBe('NonSerializableError');
      expect(error.cause.message).toContain('emit#1');
      expect(error.cause.message).toContain(UNSTORABLE[kind].path);

      const info = (await handle.status())!;
      expect(info.status).toBe('failed');
      expect(info.steps.map((s) => [s.key, s.status, s.attempts])).toEqual([
        ['prepare#1', 'succeeded', 1],
        ['emit#1', 'failed', 1],
      ]);
      expect(info.steps[0].output).toBe(`prepared ${kind}`);
      expect(info.steps[1].error).toMatchObject({ name: 'NonSerializableError' });
      const steps = app.get(Steps).calls;
      expect([steps.get(`emit:${kind}`), steps.get(`finishUp:${kind}`)]).toEqual([1, undefined]);
    },
  );

  it('a string that jsonb cannot store (NUL, lone surrogate) fails as NonSerializableError, not retried', async () => {
    // Both cases at once: while they are (wrongly) retried, each costs seconds of checkpoint retries.
    await Promise.all(
      Object.keys(UNSTORABLE_STRINGS).map(async (kind) => {
        const handle = await client.start('produceString', [kind]);
        const error = await failureOf(within(30_000, handle.result()));
        const info = (await handle.status())!;
        expect({
          kind,
          cause: error.cause.name,
          steps: info.steps.map((s) => [s.key, s.status, s.attempts]),
        }).toEqual({
          kind,
          cause: 'NonSerializableError',
          steps: [
            ['prepare#1', 'succeeded', 1],
            ['emitString#1', 'failed', 1],
          ],
        });
        expect(error.cause.message).toContain(UNSTORABLE_STRINGS[kind].path);
      }),
    );
  });

  it('a non-serializable workflow output fails the run with NonSerializableError', async () => {
    const handle = await client.start('returnsFunction', []);
    const error = await failureOf(within(60_000, handle.result()));
    expect(error.cause.name).toBe('NonSerializableError');
    expect(error.cause.message).toContain('$.callback');
    expect((await handle.status())!.steps.map((s) => s.status)).toEqual(['succeeded']);
  });

  it('a non-serializable input is refused at start and nothing is inserted', async () => {
    const id = uniqueId('bad-input');
    await expect(client.start('echo', [{ when: 1n }], { id })).rejects.toBeInstanceOf(NonSerializableError);
    await expect(client.start('echo', [new Map()], { id })).rejects.toThrow('$[0]');
    await expect(client.start('echo', ['nul \u0000 inside'], { id })).rejects.toBeInstanceOf(
      NonSerializableError,
    );
    expect(await runRows(id)).toEqual([]);
  });
});

describe('hostile ids', () => {
  const HOSTILE = [
    "it's",
    'say "hi"',
    "'); DROP TABLE durable.runs; --",
    'Robert"; drop table durable.steps; --',
    '$1 $2 %s %d ${x} {{x}}',
    '%_\\%', // LIKE wildcards and a backslash
    '  padded  ',
    'line\nbreak\ttab\r',
    'ünïcødé 日本語 العربية',
    'emoji 😀🎉👩‍👩‍👧',
    'x'.repeat(200),
    ':',
    'done:another-run', // looks like the NOTIFY payload of a finished run
  ];

  it.each(HOSTILE.map((id) => [JSON.stringify(id).slice(0, 50), id]))(
    'stores and reads back literally: %s',
    async (_, id) => {
      const handle = await client.start('echo', [id], { id });
      expect(handle.id).toBe(id);
      await expect(within(60_000, handle.result())).resolves.toBe(id);
      const info = await client.status(id);
      expect(info).toMatchObject({ id, status: 'succeeded', input: [id], output: id });
      expect(await runRows(id)).toEqual([{ id, workflow: 'echo', status: 'succeeded' }]);
      await expect(client.handle(id).result()).resolves.toBe(id);
      // Starting it again is idempotent.
      await expect((await client.start('echo', ['again'], { id })).result()).resolves.toBe(id);
    },
  );

  it('ids that differ only in case or surrounding space are different runs', async () => {
    const ids = ['Case-ID', 'case-id', ' case-id', 'case-id '];
    for (const id of ids) await (await client.start('echo', [id], { id })).result();
    for (const id of ids) expect((await client.status(id))?.output).toBe(id);
  });

  it('rejects an empty, a 201-character or a non-string id with InvalidArgumentError, inserting nothing', async () => {
    const before = await countRuns();
    for (const id of ['', 'y'.repeat(201), 42 as unknown as string, { id: 'x' } as unknown as string]) {
      await expect(client.start('echo', [1], { id })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(client.status(id)).rejects.toBeInstanceOf(InvalidArgumentError);
      expect(() => client.handle(id)).toThrow(InvalidArgumentError);
    }
    expect(await countRuns()).toBe(before);
  });

  it('rejects an id PostgreSQL cannot store as text (NUL) with InvalidArgumentError, inserting nothing', async () => {
    const before = await countRuns();
    const error = await client.start('echo', [1], { id: 'nul\u0000id' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(await countRuns()).toBe(before);
    expect(error).toBeInstanceOf(InvalidArgumentError);
  });

  it('does not let two different ill-formed UTF-16 ids collide on one run', async () => {
    // '\ud800' and '\udbff' both reach PostgreSQL as U+FFFD when encoded to UTF-8.
    const first = 'lone-\ud800';
    const second = 'lone-\udbff';
    const a = await client.start('echo', ['first'], { id: first }).then(
      (h) => h.result(),
      (e: unknown) => e,
    );
    const b = await client.start('echo', ['second'], { id: second }).then(
      (h) => h.result(),
      (e: unknown) => e,
    );
    // Either such ids are refused as invalid, or each is its own run, stored literally.
    const refused = a instanceof InvalidArgumentError && b instanceof InvalidArgumentError;
    if (!refused) {
      const stored = await sql<{ id: string }>(ds, `SELECT id FROM durable.runs WHERE id LIKE 'lone-%'`);
      expect({ a, b, stored: stored.map((r) => r.id) }).toEqual({
        a: 'first',
        b: 'second',
        stored: [first, second],
      });
    }
  });
});

describe('maxPayloadBytes', () => {
  let small: INestApplicationContext;
  let smallClient: DurableClient;
  const LIMIT = 1_024;

  beforeAll(async () => {
    small = await createDurableApp({
      url: db.url,
      providers: [Steps],
      durable: { schema: 'small', maxPayloadBytes: LIMIT, executorId: 'small-payloads' },
    });
    smallClient = small.get(DurableClient);
  });

  afterAll(async () => {
    await small?.close();
  });

  /** Input args of `big` whose JSON is exactly `bytes` long: [padding, 0, 0]. */
  const inputOf = (bytes: number) => ['i'.repeat(bytes - '["",0,0]'.length), 0, 0];

  it('an input over the limit is refused with PayloadTooLargeError and nothing is inserted', async () => {
    const id = uniqueId('too-large');
    const before = await countRuns('small');
    const start = smallClient.start('big', inputOf(LIMIT + 1), { id });
    await expect(start).rejects.toBeInstanceOf(PayloadTooLargeError);
    await expect(start).rejects.toThrow(/maxPayloadBytes/);
    expect(await runRows(id, 'small')).toEqual([]);
    expect(await countRuns('small')).toBe(before);
  });

  it('the limit counts UTF-8 bytes: an input of exactly the limit passes, one multi-byte character more fails', async () => {
    const exact = await smallClient.start('big', inputOf(LIMIT));
    await expect(within(60_000, exact.result())).resolves.toEqual({ a: 0, pad: '' });
    const withAccent = ['é'.repeat((LIMIT - '["",0,0]'.length) / 2 + 1), 0, 0]; // 2 bytes per é
    await expect(smallClient.start('big', withAccent)).rejects.toBeInstanceOf(PayloadTooLargeError);
  });

  it('a step output over the limit fails the step at once (attempts 1) and the run', async () => {
    const handle = await smallClient.start('big', [0, 0, LIMIT * 2]);
    const error = await failureOf(within(60_000, handle.result()));
    expect(error.cause.name).toBe('PayloadTooLargeError');
    expect(error.cause.message).toContain('sized#1');
    const info = (await handle.status())!;
    expect(info.steps.map((s) => [s.key, s.status, s.attempts])).toEqual([['sized#1', 'failed', 1]]);
  });

  it('a workflow output over the limit fails the run with PayloadTooLargeError', async () => {
    const handle = await smallClient.start('big', [0, LIMIT * 2, 10]);
    const error = await failureOf(within(60_000, handle.result()));
    expect(error.cause.name).toBe('PayloadTooLargeError');
    expect((await handle.status())!.steps.map((s) => [s.key, s.status])).toEqual([['sized#1', 'succeeded']]);
  });

  it('the default app (1 MiB limit) takes the same payloads', async () => {
    const handle = await client.start('big', [0, LIMIT * 2, LIMIT * 2]);
    await expect(within(60_000, handle.result())).resolves.toMatchObject({ a: LIMIT * 2 });
  });
});

describe('invalid durations and names in decorators', () => {
  it.each([
    ['@Step timeout "5 minutes"', () => Step({ timeout: '5 minutes' })],
    ['@Step timeout "1w"', () => Step({ timeout: '1w' })],
    ['@Step timeout -1', () => Step({ timeout: -1 })],
    ['@Step timeout Infinity', () => Step({ timeout: Number.POSITIVE_INFINITY })],
    ['@Step timeout ""', () => Step({ timeout: '' })],
    ['@Step timeout "1.5.s"', () => Step({ timeout: '1.5.s' })],
    ['@Step timeout "-5s"', () => Step({ timeout: '-5s' })],
    ['@Step retry.initialDelay "soon"', () => Step({ retry: { initialDelay: 'soon' } })],
    ['@Step retry.maxDelay NaN', () => Step({ retry: { maxDelay: Number.NaN } })],
    ['@Step retry.maxAttempts 0', () => Step({ retry: { maxAttempts: 0 } })],
    ['@Step retry.backoffFactor 0.5', () => Step({ retry: { backoffFactor: 0.5 } })],
    ['@Step retry.nonRetryable ["x"]', () => Step({ retry: { nonRetryable: ['x' as never] } })],
    ['@Step name ""', () => Step('')],
    ['@Step name "$reserved"', () => Step('$reserved')],
    ['@Step name of 201 characters', () => Step('n'.repeat(201))],
    ['@Workflow timeout "10 s"', () => Workflow({ timeout: '10 s' })],
    ['@Workflow timeout {}', () => Workflow({ timeout: {} as never })],
    ['@Workflow name "$x"', () => Workflow('$x')],
    ['@Workflow version ""', () => Workflow({ version: '' })],
  ])('%s throws InvalidArgumentError when the class is declared', (_, decorator) => {
    expect(() => {
      class Declared {
        async method() {
          return 1;
        }
      }
      const descriptor = Object.getOwnPropertyDescriptor(Declared.prototype, 'method')!;
      decorator()(Declared.prototype, 'method', descriptor);
    }).toThrow(InvalidArgumentError);
  });

  it('rejects a class declaration that uses an invalid duration (decorator syntax)', () => {
    expect(() => {
      @Injectable()
      class Broken {
        @Step({ timeout: 'forever' })
        async step() {
          return 1;
        }
      }
      return Broken;
    }).toThrow(InvalidArgumentError);
  });

  it('accepts every documented duration form', () => {
    for (const timeout of [0, 250, '500ms', '30s', '1.5s', '5m', '2h', '1d']) {
      expect(() => Step({ timeout, retry: { initialDelay: timeout, maxDelay: timeout } })).not.toThrow();
      expect(() => Workflow({ timeout })).not.toThrow();
    }
  });

  it('rejects an invalid duration given at call time, inserting nothing', async () => {
    const id = uniqueId('bad-timeout');
    await expect(client.start('echo', [1], { id, timeout: 'tomorrow' })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    expect(await runRows(id)).toEqual([]);
    const handle = await client.start('echo', [1]);
    await expect(handle.result({ timeout: 'a while' })).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});

describe('a workflow no process here has registered', () => {
  it('started by name stays pending, untouched by this process sweeps', async () => {
    const handle = await client.start('registeredNowhere', [1, 'two']);
    await sleep(300); // six sweeps at pollIntervalMs 50
    const info = (await handle.status())!;
    expect(info).toMatchObject({
      workflow: 'registeredNowhere',
      version: '1',
      status: 'pending',
      attempts: 0,
      input: [1, 'two'],
    });
    expect(info.steps).toEqual([]);
    await expect(handle.result({ timeout: 50 })).rejects.toThrow(/did not finish/);
  });
});
