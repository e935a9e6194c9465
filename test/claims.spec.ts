import { INestApplicationContext, Injectable } from '@nestjs/common';
import { performance } from 'node:perf_hooks';
import { DataSource } from 'typeorm';
import { DurableClient, Step, Workflow } from 'nest-durable';
import { DurableStore } from 'nest-durable/persistence/durable.store';
import { WorkflowRegistry } from 'nest-durable/workflow.registry';
import { claimStatement, explainAnalyze, inRolledBack, PlanNode, planNodes } from './support/claim-plans';
import { createTestDatabase, TestDatabase } from './support/database';
import { createDurableApp } from './support/durable-app';
import { dataSourceOf, sql } from './support/helpers';

@Injectable()
class Served {
  @Step() async one(): Promise<number> {
    return 1;
  }

  @Workflow() async served(): Promise<number> {
    return this.one();
  }
}

/**
 * Claims read only what this process can run: 100,000 due runs of a version no process here serves
 * (another service on the same schema, a version dropped in a deploy) cost the claim nothing.
 */
describe('claims with a backlog this process does not serve', () => {
  const UNSERVED = 100_000;
  let database: TestDatabase;
  let app: INestApplicationContext;
  let ds: DataSource;
  let store: DurableStore;
  let registry: WorkflowRegistry;

  beforeAll(async () => {
    database = await createTestDatabase();
    // worker: false, so nothing claims behind the test's back; the test claims itself.
    app = await createDurableApp({ url: database.url, providers: [Served], durable: { worker: false } });
    ds = dataSourceOf(app);
    store = app.get(DurableStore);
    registry = app.get(WorkflowRegistry);
  });

  afterAll(async () => {
    await app?.close();
    await database?.drop();
  });

  /** EXPLAIN ANALYZE of the claim, rolled back (it is an UPDATE). */
  async function explainClaim(limit: number): Promise<{ plan: PlanNode; ms: number }> {
    const statement = await claimStatement(store, registry, limit);
    const result = await inRolledBack(ds, (runner) => explainAnalyze(runner, statement));
    return { plan: result.Plan, ms: result['Execution Time'] };
  }

  async function timeClaims(rounds: number): Promise<number> {
    const times: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const { text, values } = await claimStatement(store, registry, 20);
      await inRolledBack(ds, async (runner) => {
        const started = performance.now();
        await runner.query(text, values);
        times.push(performance.now() - started);
      });
    }
    return times.sort((a, b) => a - b)[Math.floor(times.length / 2)];
  }

  it('reads only the served pairs through runs_claim_idx, whatever the unserved backlog', async () => {
    await sql(
      ds,
      `INSERT INTO durable.runs (id, workflow, version, status, input, available_at)
       SELECT 'served-' || g, 'served', '1', 'pending', '[]', now() - interval '1 minute'
       FROM generate_series(1, 50) g`,
    );
    await sql(ds, `ANALYZE durable.runs`);
    const without = await timeClaims(5);

    await sql(
      ds,
      `INSERT INTO durable.runs (id, workflow, version, status, input, available_at)
       SELECT 'elsewhere-' || g, 'elsewhere', '7', 'pending', '[]', now() - interval '1 day' - g * interval '1 ms'
       FROM generate_series(1, ${UNSERVED}) g`,
    );
    await sql(ds, `ANALYZE durable.runs`);
    const withBacklog = await timeClaims(5);
    process.stderr.write(
      `[claims] claim of 20 runs, median of 5: ${without.toFixed(2)} ms without, ` +
        `${withBacklog.toFixed(2)} ms with ${UNSERVED} unserved due runs\n`,
    );

    const { plan } = await explainClaim(20);
    const all = planNodes(plan);
    const runScans = all.filter((n) => n['Relation Name'] === 'runs' && /Scan/.test(n['Node Type']));
    // No sequential scan of runs, and the due runs are found through the claim index.
    expect(runScans.filter((n) => n['Node Type'] === 'Seq Scan')).toEqual([]);
    expect(runScans.some((n) => n['Index Name'] === 'runs_claim_idx')).toBe(true);
    // Rows read from runs stay in the tens: the 100,000 unserved runs are never visited.
    const rowsRead = runScans.reduce((sum, n) => sum + (n['Actual Rows'] ?? 0) * (n['Actual Loops'] ?? 1), 0);
    expect(rowsRead).toBeLessThan(200);
  });

  it('a claim takes the served runs, oldest first, and leaves the unserved ones alone', async () => {
    const client = app.get(DurableClient);
    const claimed = await store.claimRuns('claimer', registry.served(), 20);
    expect(claimed).toHaveLength(20);
    expect(claimed.every((run) => run.workflow === 'served')).toBe(true);
    const [unserved] = await sql<{ n: number }>(
      ds,
      `SELECT count(*)::int AS n FROM durable.runs WHERE workflow = 'elsewhere' AND status = 'pending' AND executor IS NULL`,
    );
    expect(unserved.n).toBe(UNSERVED);
    expect(await client.status(claimed[0].id)).toMatchObject({ status: 'running', attempts: 1 });
  });
});
