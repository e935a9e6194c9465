import { INestApplicationContext, Injectable } from '@nestjs/common';
import { performance } from 'node:perf_hooks';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { DurableClient, Step, Workflow } from 'nest-durable';
import { DurableStore } from 'nest-durable/persistence/durable.store';
import { WorkflowRegistry } from 'nest-durable/workflow.registry';
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

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Actual Rows'?: number;
  'Actual Loops'?: number;
  Plans?: PlanNode[];
}

function nodes(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodes)];
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

  /** The claim statement as the library sends it, with its parameters, for EXPLAIN (LIMIT 0: claims nothing). */
  async function claimStatement(limit: number): Promise<{ text: string; values: unknown[] }> {
    const realQuery = Client.prototype.query;
    let claim: { text: string; values: unknown[] } | undefined;
    const spy = jest.spyOn(Client.prototype, 'query').mockImplementation(function (
      this: Client,
      ...args: unknown[]
    ) {
      const config = args[0] as { text?: string; values?: unknown[] };
      if (typeof config === 'object' && /^WITH due AS/.test(config.text ?? ''))
        claim = { text: config.text!, values: [...config.values!] };
      return (realQuery as (...a: unknown[]) => unknown).apply(this, args);
    } as typeof Client.prototype.query);
    try {
      await store.claimRuns('explain-only', registry.served(), 0);
    } finally {
      spy.mockRestore();
    }
    claim!.values[3] = limit;
    return claim!;
  }

  /** EXPLAIN ANALYZE of the claim, rolled back (it is an UPDATE). */
  async function explainClaim(limit: number): Promise<{ plan: PlanNode; ms: number }> {
    const { text, values } = await claimStatement(limit);
    const runner = ds.createQueryRunner();
    try {
      await runner.startTransaction();
      const [row] = (await runner.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${text}`, values)) as {
        'QUERY PLAN': { Plan: PlanNode; 'Execution Time': number }[];
      }[];
      const [result] = row['QUERY PLAN'];
      return { plan: result.Plan, ms: result['Execution Time'] };
    } finally {
      await runner.rollbackTransaction();
      await runner.release();
    }
  }

  async function timeClaims(rounds: number): Promise<number> {
    const times: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const runner = ds.createQueryRunner();
      await runner.startTransaction();
      const { text, values } = await claimStatement(20);
      const started = performance.now();
      await runner.query(text, values);
      times.push(performance.now() - started);
      await runner.rollbackTransaction();
      await runner.release();
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
    const all = nodes(plan);
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
