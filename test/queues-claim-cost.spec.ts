/**
 * The cost of the claim with a deep queue: 100,000 queued runs across 1,000 keys. The claim stays one
 * statement that reads the queue through its index (runs_queue_due_idx), however deep the queue is.
 * Timings are printed (they go into the README), never asserted; the plan is.
 */
import { INestApplicationContext, Injectable } from '@nestjs/common';
import { performance } from 'node:perf_hooks';
import { DataSource } from 'typeorm';
import { Step, Workflow } from 'nest-durable';
import { DurableStore } from 'nest-durable/persistence/durable.store';
import { WorkflowRegistry } from 'nest-durable/workflow.registry';
import { claimStatement, explainAnalyze, inRolledBack, PlanNode, planNodes } from './support/claim-plans';
import { createTestDatabase, TestDatabase } from './support/database';
import { createDurableApp } from './support/durable-app';
import { dataSourceOf, sql } from './support/helpers';

jest.setTimeout(300_000);

@Injectable()
class Provisioning {
  @Step() async call(): Promise<number> {
    return 1;
  }

  @Workflow() async provision(): Promise<number> {
    return this.call();
  }
}

const QUEUED = 100_000;
const KEYS = 1_000;

describe('claim cost with 100,000 queued runs across 1,000 keys', () => {
  let database: TestDatabase;
  let app: INestApplicationContext;
  let ds: DataSource;
  let store: DurableStore;
  let registry: WorkflowRegistry;

  beforeAll(async () => {
    database = await createTestDatabase();
    // worker: false, so nothing claims behind the test's back; the test claims itself.
    app = await createDurableApp({
      url: database.url,
      providers: [Provisioning],
      durable: {
        worker: false,
        queues: {
          provider: { concurrency: 200, perKeyConcurrency: 1, rateLimit: { limit: 1_000, period: '1s' } },
          later: { concurrency: 10 },
        },
      },
    });
    ds = dataSourceOf(app);
    store = app.get(DurableStore);
    registry = app.get(WorkflowRegistry);
    await sql(
      ds,
      `INSERT INTO durable.runs (id, workflow, version, status, input, available_at, queue, queue_key, priority)
       SELECT 'q-' || g, 'provision', '1', 'pending', '[]', now() - interval '1 hour' + g * interval '1 ms',
         'provider', 'tenant-' || (g % ${KEYS}), CASE WHEN g % 97 = 0 THEN 5 ELSE 0 END
       FROM generate_series(1, ${QUEUED}) g`,
    );
    await sql(ds, `ANALYZE durable.runs`);
  });

  afterAll(async () => {
    await app?.close();
    await database?.drop();
  });

  async function medianClaimMs(limit: number, rounds = 7): Promise<{ ms: number; claimed: number }> {
    const { text, values } = await claimStatement(store, registry, limit);
    const times: number[] = [];
    let claimed = 0;
    for (let i = 0; i < rounds; i++) {
      await inRolledBack(ds, async (runner) => {
        const started = performance.now();
        // TypeORM answers an UPDATE ... RETURNING with [rows, affected].
        const [rows] = (await runner.query(text, values)) as [unknown[], number];
        times.push(performance.now() - started);
        claimed = rows.length;
      });
    }
    return { ms: times.sort((a, b) => a - b)[rounds >> 1], claimed };
  }

  /** Median execution and planning time (EXPLAIN ANALYZE, in the database: no network, no client). */
  async function medianExplainMs(
    limit: number,
    rounds = 7,
  ): Promise<{ execution: number; planning: number }> {
    const statement = await claimStatement(store, registry, limit);
    const execution: number[] = [];
    const planning: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const result = await inRolledBack(ds, (runner) => explainAnalyze(runner, statement));
      execution.push(result['Execution Time']);
      planning.push(result['Planning Time']);
    }
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[xs.length >> 1];
    return { execution: median(execution), planning: median(planning) };
  }

  async function plan(limit: number): Promise<PlanNode[]> {
    const statement = await claimStatement(store, registry, limit);
    return planNodes((await inRolledBack(ds, (runner) => explainAnalyze(runner, statement))).Plan);
  }

  it('claims a batch through runs_queue_due_idx, highest priority first, one run per key', async () => {
    const idle = await medianClaimMs(20);
    const idleExplain = await medianExplainMs(20);
    // 150 keys busy (a run of each holds its slot): their waiting runs are passed over.
    await sql(
      ds,
      `UPDATE durable.runs SET status = 'running', admitted_at = now() - interval '10 seconds', executor = 'elsewhere'
       WHERE id IN (SELECT 'q-' || g FROM generate_series(1001, 1150) g)`,
    );
    const busy = await medianClaimMs(20);
    const busyExplain = await medianExplainMs(20);
    const figures = (wall: number, explain: { execution: number; planning: number }) =>
      `${wall.toFixed(2)} ms round trip, ${explain.execution.toFixed(2)} ms execution + ${explain.planning.toFixed(2)} ms planning`;
    process.stderr.write(
      `[queues] claim of 20 from ${QUEUED} queued runs over ${KEYS} keys, medians of 7: ${figures(idle.ms, idleExplain)}; ` +
        `with 150 keys busy: ${figures(busy.ms, busyExplain)}\n`,
    );
    expect(idle.claimed).toBe(20);
    expect(busy.claimed).toBe(20);

    // A second queue whose 100,000 runs are all delayed an hour: nothing of it is due.
    await sql(
      ds,
      `INSERT INTO durable.runs (id, workflow, version, status, input, available_at, queue, queue_key, priority)
       SELECT 'later-' || g, 'provision', '1', 'pending', '[]', now() + interval '1 hour' + g * interval '1 ms',
         'later', 'tenant-' || (g % ${KEYS}), g % 3
       FROM generate_series(1, ${QUEUED}) g`,
    );
    await sql(ds, `ANALYZE durable.runs`);
    const delayed = await medianExplainMs(20);
    process.stderr.write(
      `[queues] with another queue of ${QUEUED} runs delayed an hour: ${delayed.execution.toFixed(2)} ms execution\n`,
    );

    const all = await plan(20);
    const runScans = all.filter((n) => n['Relation Name'] === 'runs' && /Scan/.test(n['Node Type']));
    expect(runScans.filter((n) => n['Node Type'] === 'Seq Scan')).toEqual([]);
    expect(runScans.some((n) => n['Index Name'] === 'runs_queue_due_idx')).toBe(true);

    // What a real claim takes: the 20 highest-priority runs (g % 97 = 0), each of another key.
    const claimed = await store.claimRuns('claimer', registry.served(), 20);
    const [row] = await sql<{ keys: number; top: number }>(
      ds,
      `SELECT count(DISTINCT queue_key)::int AS keys, count(*) FILTER (WHERE priority = 5)::int AS top
       FROM durable.runs WHERE id = ANY($1)`,
      [claimed.map((run) => run.id)],
    );
    expect(row).toEqual({ keys: 20, top: 20 });
  });
});
