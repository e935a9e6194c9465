/**
 * Messages between runs and from outside: client.send (with an idempotency key) and Durable.send
 * (recorded as a step, so exactly once), received with Durable.waitForSignal(topic).
 */
import { INestApplicationContext, Injectable } from '@nestjs/common';
import {
  Durable,
  DurableClient,
  InvalidArgumentError,
  OutsideWorkflowError,
  RunNotFoundError,
  RunStateError,
  Step,
  Workflow,
} from 'nest-durable';
import { createTestDatabase, TestDatabase } from './support/database';
import { createDurableApp } from './support/durable-app';
import { dataSourceOf, requeueRun, sql, uniqueId, waitUntil } from './support/helpers';

jest.setTimeout(60_000);

@Injectable()
class Messaging {
  sends = 0;

  /** Receives `count` messages on `topic`, in order. */
  @Workflow()
  async inbox(topic: string, count: number) {
    const received: unknown[] = [];
    for (let i = 0; i < count; i++) received.push(await Durable.waitForSignal(topic, { timeout: '30s' }));
    return received;
  }

  @Workflow()
  async notifier(target: string, message: unknown) {
    this.sends++;
    await Durable.send(target, 'news', message);
    return 'sent';
  }

  @Step()
  async sendInside(target: string) {
    await Durable.send(target, 'news', 'from a step');
  }

  @Workflow()
  async stepSender(target: string) {
    await this.sendInside(target);
  }
}

let database: TestDatabase;
let app: INestApplicationContext;
let client: DurableClient;

beforeAll(async () => {
  database = await createTestDatabase();
  app = await createDurableApp({
    url: database.url,
    providers: [Messaging],
    durable: { pollIntervalMs: 100, executorId: 'messages-spec' },
  });
  client = app.get(DurableClient);
});

afterAll(async () => {
  await app?.close();
  await database?.drop();
});

const stored = (runId: string) =>
  sql<{ name: string; payload: unknown; idempotency_key: string | null }>(
    dataSourceOf(app),
    `SELECT name, payload, idempotency_key FROM durable.signals WHERE run_id = $1 ORDER BY id`,
    [runId],
  );

describe('client.send', () => {
  it('stores a message once per idempotency key; the run receives each message once, in order', async () => {
    const inbox = await client.start('inbox', ['orders', 3], { id: uniqueId('inbox') });
    expect(await client.send(inbox.id, 'orders', { n: 1 }, { idempotencyKey: 'evt-1' })).toBe(true);
    expect(await client.send(inbox.id, 'orders', { n: 1 }, { idempotencyKey: 'evt-1' })).toBe(false);
    expect(await client.send(inbox.id, 'orders', { n: 2 })).toBe(true);
    expect(await client.send(inbox.id, 'orders', { n: 3 }, { idempotencyKey: 'evt-3' })).toBe(true);
    expect(await inbox.result({ timeout: '20s' })).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
    expect((await stored(inbox.id)).map((m) => m.idempotency_key)).toEqual(['evt-1', null, 'evt-3']);
    // A repeat after the run finished is still recognised; a new message to it is refused.
    expect(await client.send(inbox.id, 'orders', { n: 1 }, { idempotencyKey: 'evt-1' })).toBe(false);
    await expect(client.send(inbox.id, 'orders', { n: 4 })).rejects.toThrow(RunStateError);
  });

  it('refuses unknown runs and bad input with typed errors', async () => {
    await expect(client.send('no-such-run', 'orders', 1)).rejects.toThrow(RunNotFoundError);
    await expect(client.send('x', '', 1)).rejects.toThrow(InvalidArgumentError);
    await expect(client.send('x', 'orders', 1, { idempotencyKey: '' })).rejects.toThrow(InvalidArgumentError);
    await expect(client.send('x', 'orders', () => 1)).rejects.toThrow(/cannot be stored as JSON/);
  });
});

describe('Durable.send', () => {
  it('is a recorded step: a replay, or a re-execution of the send step, does not send again', async () => {
    const inbox = await client.start('inbox', ['news', 2], { id: uniqueId('inbox') });
    const sender = await client.start('notifier', [inbox.id, 'hello'], { id: uniqueId('notifier') });
    expect(await sender.result({ timeout: '20s' })).toBe('sent');
    const steps = (await sender.status())!.steps;
    expect(steps.map((s) => [s.key, s.kind, s.status])).toEqual([['$send#1', 'step', 'succeeded']]);

    // Replayed: the recorded step returns, nothing is sent.
    const ds = dataSourceOf(app);
    await requeueRun(ds, sender.id);
    await waitUntil(
      'the replay',
      async () => ((await client.status(sender.id))!.attempts === 2 ? true : undefined),
      20_000,
    );
    await sender.result({ timeout: '20s' });
    // Re-executed (as after a crash between the send and its checkpoint): the idempotency key holds.
    await sql(ds, `DELETE FROM durable.steps WHERE run_id = $1`, [sender.id]);
    await requeueRun(ds, sender.id);
    await waitUntil(
      'the re-execution',
      async () => ((await client.status(sender.id))!.attempts === 3 ? true : undefined),
      20_000,
    );
    await sender.result({ timeout: '20s' });

    const messages = await stored(inbox.id);
    expect(messages).toEqual([{ name: 'news', payload: 'hello', idempotency_key: `${sender.id}:$send#1` }]);
    await client.send(inbox.id, 'news', 'second');
    expect(await inbox.result({ timeout: '20s' })).toEqual(['hello', 'second']);
  });

  it('fails the sending run when the target does not exist, without retrying', async () => {
    const sender = await client.start('notifier', ['missing-run', 1], { id: uniqueId('notifier') });
    await expect(sender.result({ timeout: '20s' })).rejects.toThrow(/No run with id "missing-run"/);
    expect((await sender.status())!.steps[0]).toMatchObject({
      key: '$send#1',
      status: 'failed',
      attempts: 1,
    });
  });

  it('cannot be called inside a step, or outside a workflow', async () => {
    const sender = await client.start('stepSender', ['anything'], { id: uniqueId('step-sender') });
    await expect(sender.result({ timeout: '20s' })).rejects.toThrow(/cannot be called inside a @Step/);
    expect(() => Durable.send('x', 'news', 1)).toThrow(OutsideWorkflowError);
  });
});
