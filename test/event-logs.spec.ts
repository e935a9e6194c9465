/**
 * The log lines written from the lifecycle events (through Nest's Logger, context 'Durable'): a replay
 * mismatch names the expected and the actual step, a failed run its error's name and code, a recovery
 * its count; none carries the run's input, output or error message.
 */
import { INestApplicationContext, Injectable, Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { DurableClient, DurableEvents, Step, Workflow } from 'nest-durable';
import { createTestDatabase, TestDatabase } from './support/database';
import { createDurableApp } from './support/durable-app';
import { requeueRun, uniqueId, waitUntil } from './support/helpers';

const SECRET = 'card-4242-4242';

@Injectable()
class LoggedFlows {
  renamed = false;

  @Workflow('logged')
  async logged(secret: string) {
    await this.first(secret);
    return this.renamed ? this.third(secret) : this.second(secret);
  }

  @Step() async first(secret: string) {
    return secret.length;
  }
  @Step() async second(secret: string) {
    return `${secret}!`;
  }
  @Step() async third(secret: string) {
    return `${secret}?`;
  }

  @Workflow('loggedFailure')
  async failing(secret: string) {
    return this.boom(secret);
  }

  @Step({ retry: { maxAttempts: 1 } })
  async boom(secret: string): Promise<never> {
    throw Object.assign(new Error(`declined ${secret}`), { name: 'PaymentDeclined', code: 'E_DECLINED' });
  }
}

describe('log lines from the lifecycle events', () => {
  let db: TestDatabase;
  let app: INestApplicationContext;
  const lines: string[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    for (const level of ['log', 'warn', 'error'] as const) {
      jest.spyOn(Logger.prototype, level).mockImplementation((...args: unknown[]) => {
        lines.push(`${level} ${String(args[0])}`);
      });
    }
    app = await createDurableApp({ url: db.url, providers: [LoggedFlows] });
  });

  afterAll(async () => {
    jest.restoreAllMocks();
    await app?.close();
    await db?.drop();
  });

  it('a replay mismatch: expected and actual step, once', async () => {
    const client = app.get(DurableClient);
    const handle = await client.start('logged', [SECRET]);
    await handle.result();
    app.get(LoggedFlows).renamed = true;
    await requeueRun(app.get(DataSource), handle.id);
    const line = await waitUntil(
      'the replay mismatch line',
      async () => lines.find((l) => l.includes(`Run "${handle.id}" failed on a replay mismatch`)),
      15_000,
    );
    expect(line).toBe(
      `error Run "${handle.id}" failed on a replay mismatch: expected "second#1", got "third#1". Its history is kept; deploy the matching code and resume it.`,
    );
    expect(lines.filter((l) => l.includes(handle.id))).toEqual([line]);
  });

  it('a failed run: its error name and code, not its message', async () => {
    const id = uniqueId('logged-failure');
    await app.get(DurableClient).start('loggedFailure', [SECRET], { id });
    await expect(app.get(DurableClient).handle(id).result()).rejects.toThrow();
    expect(lines).toContain(
      `warn Run "${id}" of workflow "loggedFailure" failed: PaymentDeclined (E_DECLINED).`,
    );
  });

  it('recovered runs: the count', () => {
    app.get(DurableEvents).emit({ type: 'runs.recovered', count: 3, trigger: 'sweep' });
    expect(lines).toContain(
      'log Recovered 3 interrupted run(s) in a periodic sweep; they are queued for execution.',
    );
  });

  it('no line carries a payload', () => {
    expect(lines.filter((l) => l.includes(SECRET))).toEqual([]);
  });
});
