/**
 * The claim statement as the library sends it, and what PostgreSQL does with it: for the specs that
 * EXPLAIN and time claims (claims.spec.ts, queues-claim-cost.spec.ts). Every run of it is rolled back,
 * so each round sees the same runs.
 */
import { Client } from 'pg';
import type { DataSource, QueryRunner } from 'typeorm';
import type { DurableStore } from 'nest-durable/persistence/durable.store';
import type { WorkflowRegistry } from 'nest-durable/workflow.registry';

export interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Actual Rows'?: number;
  'Actual Loops'?: number;
  Plans?: PlanNode[];
}

export interface ExplainedPlan {
  Plan: PlanNode;
  'Execution Time': number;
  'Planning Time': number;
}

/** A plan node and every node under it. */
export const planNodes = (plan: PlanNode): PlanNode[] => [plan, ...(plan.Plans ?? []).flatMap(planNodes)];

/** The claim statement with its parameters, captured from a claim of 0 runs, set to claim `limit`. */
export async function claimStatement(
  store: DurableStore,
  registry: WorkflowRegistry,
  limit: number,
): Promise<{ text: string; values: unknown[] }> {
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

/** Runs `fn` in a transaction that is rolled back afterwards. */
export async function inRolledBack<T>(ds: DataSource, fn: (runner: QueryRunner) => Promise<T>): Promise<T> {
  const runner = ds.createQueryRunner();
  await runner.startTransaction();
  try {
    return await fn(runner);
  } finally {
    await runner.rollbackTransaction();
    await runner.release();
  }
}

/** EXPLAIN ANALYZE of a statement on `runner` (it runs: roll it back). */
export async function explainAnalyze(
  runner: QueryRunner,
  statement: { text: string; values: unknown[] },
): Promise<ExplainedPlan> {
  const [row] = (await runner.query(
    `EXPLAIN (ANALYZE, FORMAT JSON) ${statement.text}`,
    statement.values,
  )) as {
    'QUERY PLAN': ExplainedPlan[];
  }[];
  return row['QUERY PLAN'][0];
}
