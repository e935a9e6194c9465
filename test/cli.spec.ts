import { INestApplicationContext, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { Durable, DurableClient, durableMigrations, Step, Workflow } from 'nest-durable';
import { EXIT, runCli } from 'nest-durable/cli';
import { createTestDatabase } from './support/database';
import { createDurableApp } from './support/durable-app';
import { dataSourceOf, waitUntil } from './support/helpers';
import { spawnTs } from './support/spawn';

@Injectable()
class Tasks {
  broken = true;

  @Step() async load(n: number): Promise<number> {
    return n * 10;
  }

  @Step({ retry: { maxAttempts: 1 } }) async push(n: number): Promise<number> {
    if (this.broken) throw new Error(`push refused ${n}`);
    return n + 1;
  }

  @Workflow() async sync(n: number): Promise<number> {
    return this.push(await this.load(n));
  }

  @Workflow() async gate(): Promise<unknown> {
    return Durable.waitForSignal('open');
  }
}

/** Runs the CLI in this process, collecting what it prints. */
async function cli(url: string | undefined, ...argv: string[]) {
  let out = '';
  let err = '';
  const code = await runCli(argv, {
    out: (text) => (out += text),
    err: (text) => (err += text),
    env: url ? { DATABASE_URL: url } : {},
  });
  return { code, out, err, json: () => JSON.parse(out) };
}

describe('nest-durable CLI', () => {
  let database: { url: string; drop(): Promise<void> };
  let app: INestApplicationContext;
  let client: DurableClient;
  let tasks: Tasks;
  let ds: DataSource;

  beforeAll(async () => {
    database = await createTestDatabase();
    // The CLI creates the schema; the worker app then finds it there.
    const migrated = await cli(database.url, 'migrate', '--json');
    expect(migrated.code).toBe(EXIT.ok);
    expect(migrated.json().applied).toEqual(durableMigrations().map((migration) => new migration().name));
    app = await createDurableApp({
      url: database.url,
      providers: [Tasks],
      durable: { leaseMs: 2_000, heartbeatMs: 500, pollIntervalMs: 100 },
    });
    client = app.get(DurableClient);
    tasks = app.get(Tasks);
    ds = dataSourceOf(app);
    for (const n of [1, 2])
      await expect((await client.start('sync', [n], { id: `cli-sync-${n}` })).result()).rejects.toThrow();
    await client.start('gate', [], { id: 'cli-gate' });
  });

  afterAll(async () => {
    await app?.close();
    await database?.drop();
  });

  it('migrate is idempotent', async () => {
    const again = await cli(database.url, 'migrate');
    expect(again).toMatchObject({ code: EXIT.ok, out: 'The schema is up to date.\n' });
  });

  it('lists and shows runs as tables or JSON', async () => {
    const table = await cli(database.url, 'runs', 'list', '--status', 'failed');
    expect(table.code).toBe(EXIT.ok);
    expect(table.out.split('\n')[0]).toMatch(
      /^ID\s+WORKFLOW\s+VERSION\s+STATUS\s+ATTEMPTS\s+CREATED\s+ERROR$/,
    );
    expect(table.out).toContain('cli-sync-2  sync');
    expect(table.out).toContain('push refused 20');

    const page = await cli(database.url, '--json', 'runs', 'list', '--error', 'refused 10', '--limit', '5');
    expect(page.json().runs.map((run: { id: string }) => run.id)).toEqual(['cli-sync-1']);

    const first = await cli(database.url, '--json', 'runs', 'list', '--workflow', 'sync', '--limit', '1');
    const next = await cli(
      database.url,
      '--json',
      'runs',
      'list',
      '--workflow',
      'sync',
      '--limit',
      '1',
      '--after',
      first.json().next,
    );
    expect([...first.json().runs, ...next.json().runs].map((run: { id: string }) => run.id)).toEqual([
      'cli-sync-2',
      'cli-sync-1',
    ]);

    const shown = await cli(database.url, 'runs', 'show', 'cli-sync-1');
    expect(shown.out).toMatch(/Status\s+failed/);
    expect(shown.out).toMatch(/push#1\s+step\s+failed/);
    const json = (await cli(database.url, '--json', 'runs', 'show', 'cli-sync-1')).json();
    expect(json.steps.map((step: { key: string }) => step.key)).toEqual(['load#1', 'push#1']);
  });

  it('acts on runs, with exit codes scripts can branch on', async () => {
    tasks.broken = false;
    expect((await cli(database.url, 'runs', 'resume', 'cli-sync-1')).code).toBe(EXIT.ok);
    await expect(client.handle('cli-sync-1').result({ timeout: '10s' })).resolves.toBe(11);
    const refused = await cli(database.url, 'runs', 'resume', 'cli-sync-1');
    expect(refused.code).toBe(EXIT.refused);
    expect(refused.err).toContain('Cannot resume run "cli-sync-1"');

    const forked = await cli(
      database.url,
      '--json',
      'runs',
      'fork',
      'cli-sync-2',
      '--from-step',
      'push#1',
      '--id',
      'cli-fork',
    );
    expect(forked.json()).toEqual({ id: 'cli-fork', forkedFrom: 'cli-sync-2' });
    await expect(client.handle('cli-fork').result({ timeout: '10s' })).resolves.toBe(21);

    expect(
      (await cli(database.url, 'runs', 'signal', 'cli-gate', 'open', '--payload', '{"by":"cli"}')).code,
    ).toBe(EXIT.ok);
    await expect(client.handle('cli-gate').result({ timeout: '10s' })).resolves.toEqual({ by: 'cli' });
    expect((await cli(database.url, 'runs', 'signal', 'cli-gate', 'open', '--payload', '{nope')).code).toBe(
      EXIT.usage,
    );

    await client.start('gate', [], { id: 'cli-gate-2' });
    expect((await cli(database.url, 'runs', 'cancel', 'cli-gate-2', '--reason', 'not needed')).code).toBe(
      EXIT.ok,
    );
    expect((await cli(database.url, 'runs', 'cancel', 'cli-gate-2')).code).toBe(EXIT.refused);
    expect((await cli(database.url, 'runs', 'show', 'nope')).code).toBe(EXIT.notFound);
    expect((await cli(database.url, 'runs', 'list', '--status', 'exploded')).code).toBe(EXIT.usage);
    expect((await cli(database.url, 'runs', 'frobnicate')).code).toBe(EXIT.usage);
    expect((await cli(undefined, 'runs', 'list')).code).toBe(EXIT.noDatabase);
  });

  it('purges finished runs in batches', async () => {
    await ds.query(`UPDATE durable.runs SET created_at = now() - interval '3 days', updated_at = now() - interval '3 days'
      WHERE id = 'cli-gate-2'`);
    const purged = await cli(
      database.url,
      '--json',
      'purge',
      '--before',
      '2d',
      '--status',
      'cancelled',
      '--batch-size',
      '10',
    );
    expect(purged.json()).toEqual({ runs: 1, batches: 1 });
    expect(await ds.query(`SELECT id FROM durable.runs WHERE id = 'cli-gate-2'`)).toEqual([]);
    expect((await cli(database.url, 'purge', '--before', '2d', '--status', 'running')).code).toBe(EXIT.usage);
  });

  it('runs as a process: the bin prints JSON and exits with the code', async () => {
    const child = spawnTs('libs/durable/src/cli/main.ts', {
      args: ['--json', 'runs', 'list', '--id-prefix', 'cli-sync-'],
      env: { DATABASE_URL: database.url },
      stdin: 'ignore',
    });
    expect(await child.exited).toEqual({ code: 0, signal: null });
    expect(JSON.parse(child.stdoutLines.join('\n')).runs).toHaveLength(2);
    const missing = spawnTs('libs/durable/src/cli/main.ts', {
      args: ['runs', 'show', 'nope'],
      env: { DATABASE_URL: database.url },
      stdin: 'ignore',
    });
    expect((await missing.exited).code).toBe(EXIT.notFound);
    await waitUntil('stderr', async () => (missing.stderrLines.length ? true : undefined), 1_000);
    expect(missing.stderrLines).toEqual(['No run with id "nope".']);
  }, 180_000); // two Node processes that compile the library on start: slow on a loaded machine
});
