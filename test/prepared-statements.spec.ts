import { INestApplicationContext, Injectable } from '@nestjs/common';
import { Step, Workflow } from 'nest-durable';
import { createTestDatabase } from './support/database';
import { createDurableApp } from './support/durable-app';
import { watchStatements } from './support/statements';

/**
 * The library's statements are named prepared statements by default (parsed and planned once per
 * connection) and plain parameterized queries with preparedStatements: false, for poolers that cannot
 * keep them. Observed at pg's Client.prototype.query (a spy that delegates to the real method).
 */
@Injectable()
class Adder {
  @Workflow()
  async addThree(x: number) {
    let v = x;
    for (let i = 0; i < 3; i++) v = await this.add(v);
    return v;
  }

  @Step()
  async add(v: number) {
    return v + 1;
  }
}

let db: { url: string; drop(): Promise<void> };
const apps: INestApplicationContext[] = [];
let spy: jest.SpyInstance;
/** Per application_name: the statement name (or null) of each library statement sent. */
const sent = new Map<string, (string | null)[]>();

beforeAll(async () => {
  db = await createTestDatabase();
  for (const [name, preparedStatements] of [
    ['prepared-on', true],
    ['prepared-off', false],
  ] as const) {
    apps.push(
      await createDurableApp({
        url: db.url,
        providers: [Adder],
        applicationName: name,
        // No heartbeat or sweep during the test: only the runs' statements are seen.
        durable: {
          executorId: name,
          preparedStatements,
          leaseMs: 600_000,
          heartbeatMs: 100_000,
          pollIntervalMs: 100_000,
        },
      }),
    );
  }
  spy = watchStatements(({ app, text, name }) => {
    if (/"durable"\./.test(text)) sent.set(app, [...(sent.get(app) ?? []), name ?? null]);
  });
});

afterAll(async () => {
  spy?.mockRestore();
  for (const app of apps) await app.close();
  await db?.drop();
});

it('sends named prepared statements by default, one name per statement text', async () => {
  for (let i = 0; i < 3; i++) expect(await apps[0].get(Adder).addThree(10 * i)).toBe(10 * i + 3);
  const names = sent.get('prepared-on') ?? [];
  expect(names.length).toBeGreaterThanOrEqual(15);
  expect(names.every((n) => typeof n === 'string' && n.startsWith('durable_'))).toBe(true);
  // Insert-claim, checkpoint, finish: three statement texts, so three names, reused by every run.
  expect(new Set(names).size).toBe(3);
});

it('sends plain parameterized queries with preparedStatements: false, and works the same', async () => {
  for (let i = 0; i < 3; i++) expect(await apps[1].get(Adder).addThree(10 * i)).toBe(10 * i + 3);
  const names = sent.get('prepared-off') ?? [];
  expect(names.length).toBeGreaterThanOrEqual(15);
  expect(names.every((n) => n === null)).toBe(true);
});
