import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { messages } from '../durable.messages';
import { InvalidArgumentError, RunConflictError, RunNotFoundError, RunStateError } from '../errors';
import { RUN_STATUSES, type ErrorInfo, type RunStatus, type StepKind, type StepStatus } from '../interfaces';
import { DurableDatabase } from '../persistence/durable.database';
import { decodeJson, storableText } from '../persistence/json-codec';
import { decodeRunCursor, encodeRunCursor } from './admin-cursor';
import type {
  AdminRunDetail,
  AdminRunFilter,
  AdminRunPage,
  AdminRunSummary,
  AdminSignal,
  AdminStatusCounts,
  AdminStep,
} from './admin.interfaces';

export const DEFAULT_ADMIN_PAGE = 50;
export const MAX_ADMIN_PAGE = 500;
/** Counts per status stop here: counting a million rows on every refresh would cost more than it tells. */
export const DEFAULT_COUNT_CAP = 10_000;
/** Errored runs read per page of a search for text in the error (see searchErrors). */
export const ERROR_SEARCH_WINDOW = 10_000;
const MAX_CHILDREN = 200;
const MAX_SIGNALS = 500;
const SUMMARY_COLUMNS = `id, workflow, version, status, attempts, parent_id, compensating, created_at, updated_at,
  error->>'name' AS error_name, error->>'code' AS error_code, left(error->>'message', 500) AS error_message`;

/**
 * The queries of the operator tools (the admin module's API and dashboard, and the CLI): run lists with
 * indexed filters and keyset pages, counts per status, a run with its whole story, and fork. Reads go
 * as unnamed statements, planned for their actual filter values (operator queries are not hot).
 */
@Injectable()
export class DurableAdminStore {
  constructor(private readonly db: DurableDatabase) {}

  /** Runs newest first matching every given filter; `next` continues after the last one. */
  async listRuns(filter: AdminRunFilter = {}): Promise<AdminRunPage> {
    const limit = filter.limit ?? DEFAULT_ADMIN_PAGE;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_ADMIN_PAGE)
      throw new InvalidArgumentError(
        messages.invalidFilter('limit', `an integer from 1 to ${MAX_ADMIN_PAGE}`),
      );
    const where: string[] = [];
    const params: unknown[] = [];
    const param = (value: unknown) => {
      params.push(value);
      return `$${params.length}`;
    };
    if (filter.status?.length) {
      if (filter.status.some((status) => !RUN_STATUSES.includes(status)))
        throw new InvalidArgumentError(messages.invalidFilter('status', `one of ${RUN_STATUSES.join(', ')}`));
      where.push(`status = ANY(${param(filter.status)}::text[])`);
    }
    if (filter.workflow !== undefined) where.push(`workflow = ${param(text('workflow', filter.workflow))}`);
    if (filter.version !== undefined) where.push(`version = ${param(text('version', filter.version))}`);
    if (filter.createdAfter !== undefined)
      where.push(`created_at >= ${param(date('createdAfter', filter.createdAfter))}`);
    if (filter.createdBefore !== undefined)
      where.push(`created_at < ${param(date('createdBefore', filter.createdBefore))}`);
    if (filter.idPrefix !== undefined)
      where.push(`id LIKE ${param(`${escapeLike(text('idPrefix', filter.idPrefix))}%`)}`);
    if (filter.errorText !== undefined) where.push('error IS NOT NULL');
    if (filter.after !== undefined) {
      const cursor = decodeRunCursor(filter.after);
      where.push(`(created_at, id) < (${param(cursor.createdAt)}::timestamptz, ${param(cursor.id)}::text)`);
    }
    if (filter.errorText !== undefined) {
      const pattern = `%${escapeLike(text('errorText', filter.errorText))}%`;
      return this.searchErrors(where, params, pattern, limit);
    }
    const { rows } = await this.read<SummaryRow & { cursor_ts: string }>(
      `SELECT ${SUMMARY_COLUMNS}, created_at::text AS cursor_ts FROM ${this.db.s}.runs
       ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY created_at DESC, id DESC LIMIT ${param(limit + 1)}`,
      params,
    );
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      runs: page.map(toSummary),
      next:
        rows.length > limit && last ? encodeRunCursor({ createdAt: last.cursor_ts, id: last.id }) : undefined,
    };
  }

  /**
   * Text in the error has no index to use (no extension is required, so no trigram index): each page
   * reads at most ERROR_SEARCH_WINDOW errored runs, newest first on the errored-runs index, and matches
   * the text in them. A page may hold fewer runs than asked, even none, and still have `next`: the
   * search goes on from where this window ended. Every page costs a bounded scan, whatever the table.
   */
  private async searchErrors(
    where: string[],
    params: unknown[],
    pattern: string,
    limit: number,
  ): Promise<AdminRunPage> {
    const n = params.length;
    // Only the columns a summary needs: a narrow window keeps any sort the planner picks cheap.
    const window = `SELECT id, workflow, version, status, attempts, parent_id, compensating, created_at, updated_at,
      error FROM ${this.db.s}.runs WHERE ${where.join(' AND ')} ORDER BY created_at DESC, id DESC`;
    // The window streams in index order and the match stops at limit + 1: a common text reads few rows.
    // The planner cannot know how selective the text is; told that no sort is wanted, it walks an index
    // in order instead of sorting every candidate (which a status filter would otherwise invite).
    const rows = await this.readInOrder<SummaryRow & { cursor_ts: string }>(
      `SELECT ${SUMMARY_COLUMNS}, created_at::text AS cursor_ts FROM (${window} LIMIT $${n + 1}) w
       WHERE concat_ws(' ', error->>'name', error->>'code', error->>'message') ILIKE $${n + 2}
       ORDER BY created_at DESC, id DESC LIMIT $${n + 3}`,
      [...params, ERROR_SEARCH_WINDOW, pattern, limit + 1],
    );
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    if (rows.length > limit && last)
      return { runs: page.map(toSummary), next: encodeRunCursor({ createdAt: last.cursor_ts, id: last.id }) };
    // A short page: the search goes on after the window's last run, if the window was full.
    const edge = await this.read<{ cursor_ts: string; id: string }>(
      `SELECT created_at::text AS cursor_ts, id FROM ${this.db.s}.runs WHERE ${where.join(' AND ')}
       ORDER BY created_at DESC, id DESC OFFSET $${n + 1} LIMIT 1`,
      [...params, ERROR_SEARCH_WINDOW - 1],
    );
    const end = edge.rows[0];
    return {
      runs: page.map(toSummary),
      next: end ? encodeRunCursor({ createdAt: end.cursor_ts, id: end.id }) : undefined,
    };
  }

  /** Runs per status, each counted up to `cap` on the (status, created_at) index. */
  async countByStatus(cap = DEFAULT_COUNT_CAP): Promise<AdminStatusCounts> {
    const { rows } = await this.read<{ status: RunStatus; n: number }>(
      `SELECT s.status, (SELECT count(*)::int FROM (SELECT 1 FROM ${this.db.s}.runs r WHERE r.status = s.status
         LIMIT $2) capped) AS n
       FROM unnest($1::text[]) AS s(status)`,
      [RUN_STATUSES, cap],
    );
    const counts = Object.fromEntries(RUN_STATUSES.map((status) => [status, 0])) as Record<RunStatus, number>;
    for (const row of rows) counts[row.status] = row.n;
    return { counts, cap };
  }

  /** Status and last change of a run (what a live run page watches). */
  async runState(id: string): Promise<{ status: RunStatus; updatedAt: Date } | undefined> {
    const { rows } = await this.read<{ status: RunStatus; updated_at: Date }>(
      `SELECT status, updated_at FROM ${this.db.s}.runs WHERE id = $1`,
      [id],
    );
    return rows[0] ? { status: rows[0].status, updatedAt: rows[0].updated_at } : undefined;
  }

  /** The run with its steps (recording order), signals, parent and children; undefined if unknown. */
  async getRun(id: string): Promise<AdminRunDetail | undefined> {
    const s = this.db.s;
    const [runs, steps, signals, children] = await Promise.all([
      this.read<DetailRow>(
        `SELECT ${SUMMARY_COLUMNS}, input, output, error, failed_step, executor, epoch, deadline, available_at,
           waits_for FROM ${s}.runs WHERE id = $1`,
        [id],
      ),
      this.read<StepRowWithSeq>(
        `SELECT seq, key, name, kind, status, attempts, output, error, started_at, finished_at
         FROM ${s}.steps WHERE run_id = $1 ORDER BY seq`,
        [id],
      ),
      this.read<SignalRow>(
        `SELECT id, name, payload, sent_at, consumed_by FROM ${s}.signals WHERE run_id = $1 ORDER BY id LIMIT $2`,
        [id, MAX_SIGNALS],
      ),
      this.read<SummaryRow>(
        `SELECT ${SUMMARY_COLUMNS} FROM ${s}.runs WHERE parent_id = $1 ORDER BY created_at, id LIMIT $2`,
        [id, MAX_CHILDREN],
      ),
    ]);
    const row = runs.rows[0];
    if (!row) return undefined;
    const parent = row.parent_id
      ? (
          await this.read<SummaryRow>(`SELECT ${SUMMARY_COLUMNS} FROM ${s}.runs WHERE id = $1`, [
            row.parent_id,
          ])
        ).rows[0]
      : undefined;
    return {
      ...toSummary(row),
      input: decodeJson(row.input),
      output: row.status === 'succeeded' ? decodeJson(row.output) : undefined,
      fullError: row.error,
      failedStep: row.failed_step,
      executor: row.executor,
      epoch: row.epoch,
      deadline: row.deadline,
      availableAt: row.available_at,
      waitingFor: row.status === 'waiting' ? (row.waits_for ?? []) : [],
      steps: steps.rows.map(toStep),
      signals: signals.rows.map(toSignal),
      parent: parent ? toSummary(parent) : null,
      children: children.rows.map(toSummary),
    };
  }

  /**
   * Creates a new run of the original's workflow, version and input whose history is the original's
   * outcomes recorded before `fromStep` (by recording order); from that step on it executes again. Not
   * copied: steps still in flight ('waiting', 'retrying') and compensations. A fork whose copied history
   * holds a step that the original compensated is refused: the fork would replay a resource that
   * was undone. The original is not modified.
   */
  async forkRun(sourceId: string, newId: string, fromStep: string | undefined): Promise<void> {
    const s = this.db.s;
    await this.db.transaction(async (manager) => {
      const q = <T>(sql: string, params: unknown[]) => this.db.query<T>(sql, params, manager);
      const source = await q<{ id: string }>(`SELECT id FROM ${s}.runs WHERE id = $1 FOR SHARE`, [sourceId]);
      if (source.rows.length === 0) throw new RunNotFoundError(messages.runNotFound(sourceId));
      let before: string | null = null;
      if (fromStep !== undefined) {
        const step = await q<{ seq: string }>(`SELECT seq FROM ${s}.steps WHERE run_id = $1 AND key = $2`, [
          sourceId,
          fromStep,
        ]);
        if (step.rows.length === 0)
          throw new InvalidArgumentError(messages.forkStepUnknown(sourceId, fromStep));
        before = step.rows[0].seq;
        const undone = await q<{ key: string }>(
          `SELECT s.key FROM ${s}.steps s JOIN ${s}.steps u ON u.run_id = s.run_id AND u.name = '$undo:' || s.key
           WHERE s.run_id = $1 AND s.seq < $2 ORDER BY s.seq LIMIT 1`,
          [sourceId, before],
        );
        if (undone.rows.length > 0)
          throw new RunStateError(messages.forkAfterCompensation(sourceId, fromStep, undone.rows[0].key));
      }
      const inserted = await q(
        `INSERT INTO ${s}.runs (id, workflow, version, status, input, deadline, queue, queue_key, priority)
         SELECT $2, workflow, version, 'pending', input, now() + (deadline - created_at), queue, queue_key, priority
         FROM ${s}.runs WHERE id = $1
         ON CONFLICT (id) DO NOTHING RETURNING id`,
        [sourceId, newId],
      );
      if (inserted.rowCount === 0) throw new RunConflictError(messages.forkIdTaken(newId));
      if (before !== null) await this.copyHistory(manager, sourceId, newId, before);
      await q(`SELECT pg_notify($1, 'run')`, [this.db.channel]);
    });
  }

  /** Copies the settled outcomes recorded before `beforeSeq`, in their order. */
  private async copyHistory(
    manager: EntityManager,
    from: string,
    to: string,
    beforeSeq: string,
  ): Promise<void> {
    const s = this.db.s;
    const copied = await this.db.query(
      `INSERT INTO ${s}.steps (run_id, key, name, kind, status, output, error, attempts, started_at, finished_at,
         undo_args)
       SELECT $2, key, name, kind, status, output, error, attempts, started_at, finished_at, undo_args
       FROM ${s}.steps
       WHERE run_id = $1 AND seq < $3 AND status IN ('succeeded', 'failed') AND name NOT LIKE '$undo:%'
       ORDER BY seq`,
      [from, to, beforeSeq],
      manager,
    );
    // A run claimed for the first time is known to have no history; a copied one must be read at claim.
    if (copied.rowCount > 0)
      await this.db.query(`UPDATE ${s}.runs SET attempts = 1 WHERE id = $1`, [to], manager);
  }

  /** A read planned without sorts or bitmap scans (SET LOCAL, in a read-only transaction of its own). */
  private async readInOrder<T>(sql: string, params: unknown[]): Promise<T[]> {
    const client = await this.db.pool.connect();
    try {
      await client.query('BEGIN READ ONLY; SET LOCAL enable_sort = off; SET LOCAL enable_bitmapscan = off');
      const result = await client.query({ text: sql, values: params });
      await client.query('COMMIT');
      return result.rows as T[];
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  private async read<T>(sql: string, params: unknown[]): Promise<{ rows: T[] }> {
    const result = await this.db.pool.query({ text: sql, values: params });
    return { rows: result.rows as T[] };
  }
}

interface SummaryRow {
  id: string;
  workflow: string;
  version: string;
  status: RunStatus;
  attempts: number;
  parent_id: string | null;
  compensating: boolean;
  created_at: Date;
  updated_at: Date;
  error_name: string | null;
  error_code: string | null;
  error_message: string | null;
}

interface DetailRow extends SummaryRow {
  input: unknown;
  output: unknown;
  error: ErrorInfo | null;
  failed_step: string | null;
  executor: string | null;
  epoch: number;
  deadline: Date | null;
  available_at: Date;
  waits_for: string[] | null;
}

interface StepRowWithSeq {
  seq: string;
  key: string;
  name: string;
  kind: StepKind;
  status: StepStatus;
  attempts: number;
  output: unknown;
  error: ErrorInfo | null;
  started_at: Date;
  finished_at: Date | null;
}

interface SignalRow {
  id: string;
  name: string;
  payload: unknown;
  sent_at: Date;
  consumed_by: string | null;
}

function toSummary(row: SummaryRow): AdminRunSummary {
  return {
    id: row.id,
    workflow: row.workflow,
    version: row.version,
    status: row.status,
    attempts: row.attempts,
    parentId: row.parent_id,
    compensating: row.compensating,
    error:
      row.error_name !== null || row.error_message !== null
        ? {
            name: row.error_name ?? 'Error',
            ...(row.error_code ? { code: row.error_code } : {}),
            message: row.error_message ?? '',
          }
        : null,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function toStep(row: StepRowWithSeq): AdminStep {
  const shown = row.status === 'succeeded' || row.status === 'waiting';
  const output = shown ? decodeJson(row.output) : undefined;
  return {
    seq: Number(row.seq),
    key: row.key,
    name: row.name,
    kind: row.kind,
    status: row.status,
    attempts: row.attempts,
    output,
    error: row.error,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    wakeAt: wakeTimeOf(row.kind, output),
    compensation: row.name.startsWith('$undo:'),
  };
}

/** A sleep records { wakeAt }, a signal wait with a timeout { timeoutAt }. */
function wakeTimeOf(kind: StepKind, output: unknown): Date | null {
  if ((kind !== 'sleep' && kind !== 'signal') || output === null || typeof output !== 'object') return null;
  const value =
    (output as { wakeAt?: unknown; timeoutAt?: unknown }).wakeAt ??
    (output as { timeoutAt?: unknown }).timeoutAt;
  return value instanceof Date ? value : null;
}

function toSignal(row: SignalRow): AdminSignal {
  return {
    id: Number(row.id),
    name: row.name,
    payload: decodeJson(row.payload),
    sentAt: row.sent_at,
    consumedBy: row.consumed_by,
  };
}

function escapeLike(value: string): string {
  return value.replace(/[\\%_]/g, (c) => `\\${c}`);
}

function text(filter: string, value: unknown): string {
  if (typeof value !== 'string' || value.length < 1 || value.length > 200 || !storableText(value))
    throw new InvalidArgumentError(messages.invalidFilter(filter, 'a string of 1-200 characters'));
  return value;
}

function date(filter: string, value: unknown): Date {
  if (!(value instanceof Date) || Number.isNaN(value.getTime()))
    throw new InvalidArgumentError(messages.invalidFilter(filter, 'a valid Date'));
  return value;
}
