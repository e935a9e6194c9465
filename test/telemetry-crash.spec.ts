/**
 * A trace across a crash: an HTTP request (with a W3C traceparent) starts a run in process A, which is
 * SIGKILLed inside the run's second step; process B (another executor) takes the run over after A's
 * lease and finishes it. Every span of both processes belongs to the request's trace, and B's run span
 * is a child of A's request span: the trace context travelled with the run, through the database.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { DataSource } from 'typeorm';
import { createTestDatabase, TestDatabase } from './support/database';
import { uniqueId, waitUntil } from './support/helpers';
import { WorkerProcess, WorkerSet } from './support/workers';

interface PrintedSpan {
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  attributes: Record<string, unknown>;
}

function spansOf(worker: WorkerProcess): PrintedSpan[] {
  return worker
    .lines()
    .filter((line) => line.startsWith('SPAN '))
    .map((line) => JSON.parse(line.slice('SPAN '.length)) as PrintedSpan);
}

describe('tracing across a SIGKILL and a takeover by another process', () => {
  let db: TestDatabase;
  let workers: WorkerSet;

  beforeAll(async () => {
    db = await createTestDatabase();
    workers = new WorkerSet({
      fixture: path.join(__dirname, 'fixtures', 'traced-worker.ts'),
      url: () => db.url,
      baseEnv: { LEASE_MS: 2_000, HEARTBEAT_MS: 500, POLL_MS: 200 },
    });
  });

  afterAll(async () => {
    await workers?.killAll();
    await db?.drop();
  });

  // Two worker boots and a lease to wait out: generous on a loaded machine.
  it('every span belongs to the trace of the request that started the run', async () => {
    const a = await workers.start('traced-a', { BLOCK_STEP_TWO: '1' });
    const port = Number((await a.waitFor(/^HTTP \d+/)).split(' ')[1]);
    const traceId = randomBytes(16).toString('hex');
    const callerSpanId = randomBytes(8).toString('hex');
    const id = uniqueId('traced-crash');

    const response = await fetch(`http://127.0.0.1:${port}/runs/${encodeURIComponent(id)}`, {
      method: 'POST',
      headers: { traceparent: `00-${traceId}-${callerSpanId}-01` },
    });
    expect(response.status).toBe(202);
    await a.waitFor(new RegExp(`^BLOCKED ${id} two`), 30_000);
    await a.kill('SIGKILL');

    const b = await workers.start('traced-b');
    const ds = await new DataSource({ type: 'postgres', url: db.url }).initialize();
    try {
      await waitUntil(
        'the run to be finished by process B',
        async () => {
          const [row] = await ds.query(`SELECT status, attempts FROM durable.runs WHERE id = $1`, [id]);
          return row?.status === 'succeeded' ? row : undefined;
        },
        60_000,
        () => workers.outputs(),
      );
    } finally {
      await ds.destroy();
    }
    // B prints a span when it ends; the run span ends after the finish is written.
    const runOf = (spans: PrintedSpan[]) =>
      spans.find((s) => s.name === 'durable.run tracedCrash' && s.attributes['durable.run.id'] === id);
    await waitUntil(
      'B to print its run span',
      async () => runOf(spansOf(b)),
      30_000,
      () => workers.outputs(),
    );

    const fromA = spansOf(a);
    const fromB = spansOf(b);
    const request = fromA.find((s) => s.name === 'POST /runs/:id')!;
    expect(request.parentSpanId).toBe(callerSpanId);
    // A was killed inside step two: its run span never ended, step one and the user span inside it did.
    const oneA = fromA.find((s) => s.name === 'durable.step one')!;
    expect(fromA.find((s) => s.name === 'user.one')?.parentSpanId).toBe(oneA.spanId);
    expect(runOf(fromA)).toBeUndefined();

    const runB = runOf(fromB)!;
    expect(runB.parentSpanId).toBe(request.spanId);
    expect(runB.attributes).toMatchObject({
      'durable.run.attempt': 2,
      'durable.executor.id': 'traced-b',
      'durable.run.outcome': 'succeeded',
    });
    const twoB = fromB.find((s) => s.name === 'durable.step two')!;
    expect(twoB.parentSpanId).toBe(runB.spanId);
    expect(fromB.find((s) => s.name === 'user.two')?.parentSpanId).toBe(twoB.spanId);
    // Step one was replayed in B: no span for it there.
    expect(fromB.some((s) => s.name === 'durable.step one')).toBe(false);

    const all = [...fromA, ...fromB];
    expect(all.length).toBeGreaterThanOrEqual(6);
    expect(all.filter((s) => s.traceId !== traceId)).toEqual([]);
  }, 180_000);
});
