/**
 * The workload of the database-fault tests and of `npm run chaos`: runs of test/fixtures/fault-worker.ts's
 * chaosFlow (six steps, two transactional) started in bulk, and what the database (and the workers'
 * effects file) holds afterwards: finished, lost, duplicated business rows, re-executed plain steps.
 */
import { INestApplicationContext } from '@nestjs/common';
import { readFileSync } from 'node:fs';
import { DurableClient } from 'nest-durable';
import { createDurableApp } from './durable-app';
import { query, queryPatiently } from './pg-query';

export { query, queryPatiently };

/** Business rows of the transactional step `post` (no unique constraint: a double commit shows). */
export const LEDGER_TABLE_DDL = `CREATE TABLE public.ledger (
  id bigserial PRIMARY KEY, run_id text NOT NULL, step_key text NOT NULL, executor text, pid integer,
  at timestamptz NOT NULL DEFAULT clock_timestamp())`;

/** Step keys of chaosFlow, and which of them are transactional (one ledger row each). */
export const CHAOS_STEPS = ['work#1', 'post#1', 'work#2', 'work#3', 'post#2', 'work#4'];
export const CHAOS_TX_STEPS = ['post#1', 'post#2'];

/** Creates the ledger table and the library's tables (by booting a client-only app once). */
export async function prepareDatabase(url: string): Promise<void> {
  await query(url, LEDGER_TABLE_DDL);
  const app = await clientApp(url);
  await app.close();
}

/** A client-only app (worker: false) on `url`, for starting runs. */
export function clientApp(url: string): Promise<INestApplicationContext> {
  return createDurableApp({ url, providers: [], durable: { worker: false }, applicationName: 'test-client' });
}

/** Starts `count` runs of `workflow` with ids `<prefix>-1..count`, 20 at a time; returns the ids. */
export async function startRuns(
  url: string,
  prefix: string,
  count: number,
  workflow = 'chaosFlow',
): Promise<string[]> {
  const app = await clientApp(url);
  try {
    const client = app.get(DurableClient);
    const ids = Array.from({ length: count }, (_, i) => `${prefix}-${i + 1}`);
    for (let i = 0; i < ids.length; i += 20) {
      await Promise.all(ids.slice(i, i + 20).map((id, j) => client.start(workflow, [i + j + 1], { id })));
    }
    return ids;
  } finally {
    await app.close();
  }
}

/** Run counts by status. */
export async function statusCounts(url: string): Promise<Record<string, number>> {
  const rows = await queryPatiently<{ status: string; n: number }>(
    url,
    'SELECT status, count(*)::int AS n FROM durable.runs GROUP BY status',
  );
  return Object.fromEntries(rows.map((row) => [row.status, row.n]));
}

/** Terminates every backend connected to the database of `url`, except this query's own. */
export async function terminateBackends(url: string): Promise<number> {
  const rows = await query<{ n: number }>(
    url,
    `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
     WHERE datname = current_database() AND pid <> pg_backend_pid()`,
  );
  return rows[0].n;
}

/** The database's clock, in ms since the epoch. */
export async function databaseNow(url: string): Promise<number> {
  const [row] = await queryPatiently<{ ms: string }>(
    url,
    'SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS ms',
  );
  return Number(row.ms);
}

export interface WorkloadReport {
  runs: number;
  /** Runs that ended succeeded. */
  finished: number;
  /** Runs that did not end succeeded (still pending/running, or failed). */
  lost: number;
  /** Ledger rows beyond one per transactional step of a run. */
  duplicates: number;
  /** Transactional steps of a finished run with no ledger row. */
  missing: number;
  /** Executions of plain steps beyond the first (at-least-once at work). */
  reexecutions: number;
  /** Executions of transactional step bodies beyond the committed one (rolled back attempts). */
  txRetries: number;
  statuses: Record<string, number>;
  /** Database time from `since` to the last run's finish, in seconds (when `since` is given). */
  recoverSeconds?: number;
  /** A few unfinished or duplicated runs with what the database holds about them. */
  examples: string[];
}

/** What the database and the effects file hold about the runs `<prefix>-*`. */
export async function workloadReport(
  url: string,
  prefix: string,
  effectsFile?: string,
  since?: number,
): Promise<WorkloadReport> {
  const like = `${prefix}-%`;
  const runs = await queryPatiently<{
    id: string;
    status: string;
    executor: string | null;
    attempts: number;
  }>(url, 'SELECT id, status, executor, attempts FROM durable.runs WHERE id LIKE $1', [like]);
  const ledger = await queryPatiently<{ run_id: string; step_key: string; n: number }>(
    url,
    'SELECT run_id, step_key, count(*)::int AS n FROM public.ledger WHERE run_id LIKE $1 GROUP BY 1, 2',
    [like],
  );
  const [last] = await queryPatiently<{ ms: string | null }>(
    url,
    `SELECT (extract(epoch FROM max(updated_at)) * 1000)::bigint AS ms FROM durable.runs
     WHERE id LIKE $1 AND status = 'succeeded'`,
    [like],
  );
  const rows = new Map(ledger.map((row) => [`${row.run_id} ${row.step_key}`, row.n]));
  const statuses: Record<string, number> = {};
  let duplicates = 0;
  let missing = 0;
  const examples: string[] = [];
  for (const run of runs) {
    statuses[run.status] = (statuses[run.status] ?? 0) + 1;
    for (const key of CHAOS_TX_STEPS) {
      const n = rows.get(`${run.id} ${key}`) ?? 0;
      if (n > 1) duplicates += n - 1;
      if (n === 0 && run.status === 'succeeded') missing++;
      if ((n > 1 || (n === 0 && run.status === 'succeeded')) && examples.length < 5) {
        examples.push(`${run.id} ${key}: ${n} ledger rows (run ${run.status})`);
      }
    }
    if (run.status !== 'succeeded' && examples.length < 10) {
      examples.push(`${run.id}: ${run.status}, executor ${run.executor}, claimed ${run.attempts} times`);
    }
  }
  const { reexecutions, txRetries } = effectsFile ? countExecutions(effectsFile, prefix) : empty;
  const finished = statuses.succeeded ?? 0;
  return {
    runs: runs.length,
    finished,
    lost: runs.length - finished,
    duplicates,
    missing,
    reexecutions,
    txRetries,
    statuses,
    recoverSeconds:
      since !== undefined && last.ms !== null ? Math.max(0, (Number(last.ms) - since) / 1000) : undefined,
    examples,
  };
}

const empty = { reexecutions: 0, txRetries: 0 };

function countExecutions(file: string, prefix: string): { reexecutions: number; txRetries: number } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return empty;
  }
  const counts = new Map<string, number>();
  for (const line of text.split('\n')) {
    const [runId, key] = line.split(' ');
    if (!runId || !key || !runId.startsWith(`${prefix}-`)) continue;
    counts.set(`${runId} ${key}`, (counts.get(`${runId} ${key}`) ?? 0) + 1);
  }
  let reexecutions = 0;
  let txRetries = 0;
  for (const [id, n] of counts) {
    if (CHAOS_TX_STEPS.includes(id.split(' ')[1])) txRetries += n - 1;
    else reexecutions += n - 1;
  }
  return { reexecutions, txRetries };
}

/** One line for a scenario's summary (the format npm run chaos prints). */
export function summaryLine(scenario: string, report: WorkloadReport): string {
  const recover = report.recoverSeconds === undefined ? '-' : report.recoverSeconds.toFixed(1);
  return (
    `${scenario.padEnd(22)} runs ${report.runs}  finished ${report.finished}  lost ${report.lost}  ` +
    `duplicates ${report.duplicates}  missing ${report.missing}  re-executions ${report.reexecutions}  ` +
    `tx retries ${report.txRetries}  seconds to recover ${recover}`
  );
}
