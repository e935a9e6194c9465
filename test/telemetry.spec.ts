/**
 * OpenTelemetry in one process, with the SDK's in-memory span exporter and a Prometheus scrape: spans of
 * runs and step attempts continue the trace that called start() (also for a run started in a
 * transaction and claimed from the queue), user spans nest under their step, child runs under their
 * parent's step, and the metrics are served. Across processes and a SIGKILL: telemetry-crash.spec.ts.
 */
import { INestApplicationContext, Injectable } from '@nestjs/common';
import { SpanStatusCode, trace } from '@opentelemetry/api';
import { DataSource } from 'typeorm';
import { DurableClient, DurableEvents, DurableLifecycleEvent, Step, Workflow } from 'nest-durable';
import { createTestDatabase, TestDatabase } from './support/database';
import { createDurableApp } from './support/durable-app';
import { sql, uniqueId, waitUntil } from './support/helpers';
import { installTestTelemetry, sampleValue, SpanView, TestTelemetry, viewOf } from './support/otel';

class FlakyError extends Error {
  override name = 'FlakyError';
}

@Injectable()
class TracedFlows {
  readonly failuresLeft = new Map<string, number>();

  @Workflow('traced')
  async traced(tag: string) {
    const a = await this.prepare(tag);
    return this.flaky(a);
  }

  @Step()
  async prepare(tag: string) {
    // A span of the user's own, inside the step: it must nest under the step's span.
    return trace.getTracer('user-code').startActiveSpan('user.prepare', (span) => {
      span.end();
      return `${tag}!`;
    });
  }

  @Step({ retry: { maxAttempts: 3, initialDelay: '10ms' } })
  async flaky(value: string) {
    const left = this.failuresLeft.get(value) ?? 0;
    if (left > 0) {
      this.failuresLeft.set(value, left - 1);
      throw new FlakyError(`not yet (${left})`);
    }
    return value.toUpperCase();
  }

  @Workflow('tracedParent')
  async parent(tag: string) {
    const child = await this.child(tag);
    return `parent(${child})`;
  }

  @Workflow('tracedChild')
  async child(tag: string) {
    return this.prepare(tag);
  }
}

function byName(spans: SpanView[], name: string): SpanView[] {
  return spans.filter((span) => span.name === name);
}

describe('OpenTelemetry spans and metrics', () => {
  let db: TestDatabase;
  let telemetry: TestTelemetry;
  let app: INestApplicationContext;
  let client: DurableClient;
  let flows: TracedFlows;
  const events: DurableLifecycleEvent[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    telemetry = await installTestTelemetry();
    app = await createDurableApp({ url: db.url, providers: [TracedFlows] });
    client = app.get(DurableClient);
    flows = app.get(TracedFlows);
    app.get(DurableEvents).onAny((event) => void events.push(event));
  });

  afterAll(async () => {
    await app?.close();
    await telemetry?.shutdown();
    await db?.drop();
  });

  const spans = () => telemetry.spans.getFinishedSpans().map(viewOf);

  /** Starts `traced` inside a span standing for the caller (an HTTP request) and waits for its result. */
  async function startTraced(tag: string, manager?: DataSource): Promise<{ caller: SpanView; id: string }> {
    const id = uniqueId(tag);
    let callerSpan!: SpanView;
    await trace.getTracer('test').startActiveSpan('caller', async (span) => {
      if (manager) {
        await manager.transaction((tx) => client.start('traced', [tag], { id, manager: tx }));
      } else {
        await client.start('traced', [tag], { id });
      }
      span.end();
      callerSpan = spans().find((s) => s.spanId === span.spanContext().spanId)!;
    });
    await client.handle(id).result({ timeout: '30s' });
    return { caller: callerSpan, id };
  }

  it('a run executed at once: run span under the caller, step spans under it, user spans under the step', async () => {
    const tag = uniqueId('inline');
    flows.failuresLeft.set(`${tag}!`, 1);
    const { caller, id } = await startTraced(tag);
    const mine = spans().filter((s) => s.attributes['durable.run.id'] === id);
    const [run] = byName(mine, 'durable.run traced');
    expect(run).toBeDefined();
    expect(run.traceId).toBe(caller.traceId);
    expect(run.parentSpanId).toBe(caller.spanId);
    expect(run.attributes).toMatchObject({
      'durable.workflow.name': 'traced',
      'durable.workflow.version': '1',
      'durable.run.attempt': 1,
      'durable.run.outcome': 'succeeded',
    });

    const [prepare] = byName(mine, 'durable.step prepare');
    expect(prepare.parentSpanId).toBe(run.spanId);
    expect(prepare.attributes).toMatchObject({
      'durable.step.key': 'prepare#1',
      'durable.step.attempt': 1,
      'durable.step.outcome': 'succeeded',
    });
    const user = spans().find((s) => s.name === 'user.prepare' && s.parentSpanId === prepare.spanId);
    expect(user?.traceId).toBe(caller.traceId);

    // The flaky step: a failed attempt (error recorded) then a successful one, both under the run.
    const flaky = byName(mine, 'durable.step flaky').sort(
      (a, b) => Number(a.attributes['durable.step.attempt']) - Number(b.attributes['durable.step.attempt']),
    );
    expect(
      flaky.map((s) => [s.attributes['durable.step.attempt'], s.attributes['durable.step.outcome']]),
    ).toEqual([
      [1, 'failed'],
      [2, 'succeeded'],
    ]);
    expect(flaky[0].status).toBe(SpanStatusCode.ERROR);
    expect(flaky[0].events).toContain('exception');
    expect(flaky.every((s) => s.parentSpanId === run.spanId)).toBe(true);
  });

  it('a run started in a transaction and claimed from the queue continues the caller trace', async () => {
    const { caller, id } = await startTraced(uniqueId('queued'), app.get(DataSource));
    const [row] = await sql<{ trace_context: string }>(
      app.get(DataSource),
      'SELECT trace_context FROM durable.runs WHERE id = $1',
      [id],
    );
    expect(JSON.parse(row.trace_context).traceparent).toBe(`00-${caller.traceId}-${caller.spanId}-01`);
    const run = spans().find((s) => s.name === 'durable.run traced' && s.attributes['durable.run.id'] === id);
    expect(run?.traceId).toBe(caller.traceId);
    expect(run?.parentSpanId).toBe(caller.spanId);
  });

  it('a failed run records its error on the run span', async () => {
    const tag = uniqueId('failing');
    flows.failuresLeft.set(`${tag}!`, 5);
    const id = uniqueId('failing-run');
    await client.start('traced', [tag], { id });
    await expect(client.handle(id).result({ timeout: '30s' })).rejects.toThrow(/FlakyError: not yet/);
    const run = spans().find(
      (s) => s.name === 'durable.run traced' && s.attributes['durable.run.id'] === id,
    )!;
    expect(run.attributes['durable.run.outcome']).toBe('failed');
    expect(run.status).toBe(SpanStatusCode.ERROR);
    expect(run.events).toContain('exception');
    // A run started outside any span begins a trace of its own.
    expect(run.parentSpanId).toBeUndefined();
  });

  it('a child run nests under the step of its parent that started it', async () => {
    const id = uniqueId('parent');
    await trace.getTracer('test').startActiveSpan('caller', async (span) => {
      await client.start('tracedParent', ['kid'], { id });
      span.end();
    });
    await client.handle(id).result({ timeout: '30s' });
    const all = spans();
    const parentRun = all.find(
      (s) => s.name === 'durable.run tracedParent' && s.attributes['durable.run.id'] === id,
    )!;
    const childStep = all.find(
      (s) => s.name === 'durable.step tracedChild' && s.parentSpanId === parentRun.spanId,
    )!;
    expect(childStep.attributes['durable.step.kind']).toBe('child');
    const childRun = all.find(
      (s) => s.name === 'durable.run tracedChild' && s.attributes['durable.run.id'] === `${id}:tracedChild#1`,
    )!;
    expect(childRun.parentSpanId).toBe(childStep.spanId);
    expect(new Set([parentRun.traceId, childStep.traceId, childRun.traceId]).size).toBe(1);
  });

  it('emits the lifecycle events of a run in order', async () => {
    const tag = uniqueId('events');
    flows.failuresLeft.set(`${tag}!`, 1);
    const id = uniqueId('events-run');
    await client.start('traced', [tag], { id });
    await client.handle(id).result({ timeout: '30s' });
    const mine = events.filter((e) => 'runId' in e && e.runId === id);
    expect(mine.map((e) => ('stepKey' in e ? `${e.type} ${e.stepKey}#${e.attempt}` : e.type))).toEqual([
      'run.started',
      'run.claimed',
      'step.succeeded prepare#1#1',
      'step.retrying flaky#1#1',
      'step.succeeded flaky#1#2',
      'run.finished',
    ]);
    const retrying = mine.find((e) => e.type === 'step.retrying');
    expect(retrying).toMatchObject({
      workflow: 'traced',
      error: { name: 'FlakyError', message: 'not yet (1)' },
    });
    expect(mine.find((e) => e.type === 'run.finished')).toMatchObject({ status: 'succeeded' });
  });

  it('serves the metrics to a Prometheus scrape', async () => {
    // Two runs of a workflow no process serves: due, unclaimed, in the queue gauges.
    await client.start('nobodyServesThis', [1]);
    await client.start('nobodyServesThis', [2]);
    const text: string = await waitUntil(
      'the queue gauges to count the unserved runs',
      async () => {
        const scraped = await telemetry.scrape();
        return (sampleValue(scraped, 'durable_queue_depth') ?? 0) >= 2 ? scraped : undefined;
      },
      30_000,
    );
    if (process.env.SHOW_METRICS) console.log(text);
    const traced = { durable_workflow_name: 'traced' };
    // traced: the inline, queued, failing and events runs above.
    expect(sampleValue(text, 'durable_runs_started_total', traced)).toBe(4);
    expect(
      sampleValue(text, 'durable_runs_started_total', { durable_workflow_name: 'nobodyServesThis' }),
    ).toBe(2);
    expect(
      sampleValue(text, 'durable_runs_finished_total', { ...traced, durable_run_status: 'succeeded' }),
    ).toBe(3);
    expect(
      sampleValue(text, 'durable_runs_finished_total', { ...traced, durable_run_status: 'failed' }),
    ).toBe(1);
    expect(sampleValue(text, 'durable_runs_claimed_total', traced)).toBe(4);
    expect(sampleValue(text, 'durable_runs_claimed_total', { durable_workflow_name: 'tracedChild' })).toBe(1);
    // flaky: retried once in the inline and events runs, twice in the failing one (then failed for good).
    const flaky = (outcome: string) => ({ durable_step_name: 'flaky', durable_step_outcome: outcome });
    expect(sampleValue(text, 'durable_step_duration_count', flaky('retrying'))).toBe(4);
    expect(sampleValue(text, 'durable_step_duration_count', flaky('succeeded'))).toBe(3);
    expect(sampleValue(text, 'durable_step_attempts_count', flaky('failed'))).toBe(1);
    expect(sampleValue(text, 'durable_step_attempts_sum', flaky('failed'))).toBe(3);
    expect(sampleValue(text, 'durable_step_attempts_sum', flaky('succeeded'))).toBe(5);
    expect(sampleValue(text, 'durable_queue_depth')).toBe(2);
    expect(sampleValue(text, 'durable_queue_oldest_age')).toBeGreaterThan(0);
  });
});
