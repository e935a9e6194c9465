import { INestApplicationContext, Injectable, Logger } from '@nestjs/common';
import { DurableClient, Step, Workflow } from 'nest-durable';
import { createTestDatabase } from './support/database';
import { createDurableApp } from './support/durable-app';
import { dataSourceOf, eventually, sleep } from './support/helpers';

/** Version 1 of the deploy workflow, as old replicas run it. */
@Injectable()
class DeployV1 {
  @Step() async build(app: string): Promise<string> {
    return `${app}@v1`;
  }

  @Workflow({ name: 'deploy', version: 1 })
  async deploy(app: string): Promise<string> {
    return this.build(app);
  }
}

/** Version 2: a new step; runs of version 1 must not be replayed on it. */
@Injectable()
class DeployV2 {
  @Step() async compile(app: string): Promise<string> {
    return `${app}@v2`;
  }

  @Workflow({ name: 'deploy', version: 2 })
  async deploy(app: string): Promise<string> {
    return this.compile(app);
  }
}

describe('workflow versions side by side', () => {
  let database: { url: string; drop(): Promise<void> };
  const apps: INestApplicationContext[] = [];
  const fast = { leaseMs: 600, heartbeatMs: 200, pollIntervalMs: 100 };

  const boot = async (executorId: string, providers: unknown[], worker = true) => {
    const app = await createDurableApp({
      url: database.url,
      providers: providers as never[],
      durable: { ...fast, executorId, worker },
      logLevels: ['error', 'warn'],
    });
    apps.push(app);
    return app;
  };

  beforeAll(async () => {
    database = await createTestDatabase();
  });

  afterAll(async () => {
    for (const app of apps.reverse()) await app.close();
    await database?.drop();
  });

  it('each replica claims only the versions it registered; runs nobody serves wait and are reported', async () => {
    // An old client (version 1 registered, not a worker) starts runs: they are recorded as version 1.
    const oldClient = (await boot('old-client', [DeployV1], false)).get(DurableClient);
    const oldRuns = await Promise.all(['a', 'b', 'c'].map((app) => oldClient.start('deploy', [app])));

    // A new replica serves only version 2: it runs its own starts, and leaves the version 1 runs alone.
    const warnings: string[] = [];
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation((message: unknown) => {
      warnings.push(String(message));
    });
    try {
      const newApp = await boot('new-replica', [DeployV2]);
      const newClient = newApp.get(DurableClient);
      await expect((await newClient.start('deploy', ['d'])).result({ timeout: '60s' })).resolves.toBe('d@v2');
      await sleep(1_500);
      const pending = await dataSourceOf(newApp).query(
        `SELECT id, version, status, attempts FROM durable.runs WHERE version = '1' ORDER BY id`,
      );
      expect(pending).toHaveLength(3);
      for (const run of pending) expect(run).toMatchObject({ version: '1', status: 'pending', attempts: 0 });
      await eventually(
        async () => warnings.filter((w) => w.includes('version 1')).length,
        (n) => n >= 3,
        60_000,
      );
      expect(warnings.filter((w) => w.includes('needs workflow "deploy" version 1'))).toHaveLength(3);
    } finally {
      warn.mockRestore();
    }

    // An old replica drains them on the old code.
    await boot('old-replica', [DeployV1]);
    const outputs = await Promise.all(oldRuns.map((handle) => handle.result({ timeout: '60s' })));
    expect(outputs).toEqual(['a@v1', 'b@v1', 'c@v1']);
  });

  it('a process that registers both versions starts new runs on the newest and still serves the old', async () => {
    const app = await boot('both', [DeployV1, DeployV2]);
    const client = app.get(DurableClient);
    const handle = await client.start('deploy', ['e']);
    await expect(handle.result({ timeout: '60s' })).resolves.toBe('e@v2');
    expect((await client.status(handle.id))!.version).toBe('2');
  });
});
