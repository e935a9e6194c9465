import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { DurableDatabase } from '../persistence/durable.database';
import type { NewRun } from '../persistence/durable.store';
import type { FlowStart } from './start-options';

const UNFINISHED = `('pending', 'running', 'sleeping', 'waiting')`;
/** A start that lost a race with a concurrent one is read again this many times. */
const ATTEMPTS = 3;

/** The run a flow-controlled start hands back: the new one, or the existing one it was deduplicated to. */
export interface StartedRun {
  id: string;
  workflow: string;
}

/** The queue columns of a run (null queue: not queued). */
function queueParams(flow: FlowStart): [string | null, string | null, number] {
  return [flow.queue?.name ?? null, flow.queue?.key ?? null, flow.queue?.priority ?? 0];
}

/** Inserts runs started with delay, startAt, dedupKey, debounce or on a queue: one statement each. */
@Injectable()
export class StartStore {
  private readonly s: string;

  constructor(private readonly db: DurableDatabase) {
    this.s = db.s;
  }

  async insert(run: NewRun, flow: FlowStart, manager?: EntityManager): Promise<StartedRun> {
    for (let attempt = 1; ; attempt++) {
      const started =
        flow.kind === 'debounced'
          ? await this.debounce(run, flow, manager)
          : await this.delayed(run, flow, manager);
      // Nothing: the run we conflicted with committed after this statement's snapshot; read again.
      if (started || attempt === ATTEMPTS) return started ?? { id: run.id, workflow: run.workflow };
    }
  }

  /**
   * Inserts a pending run due at `startAt` or after `delay` (its deadline counts from then). When the id
   * exists, or an unfinished run of the workflow holds the dedup key, returns that run instead.
   */
  private async delayed(
    run: NewRun,
    flow: Extract<FlowStart, { kind: 'delayed' }>,
    manager?: EntityManager,
  ): Promise<StartedRun | undefined> {
    const { rows } = await this.db.query<StartedRun>(
      `WITH inserted AS (
         INSERT INTO ${this.s}.runs (id, workflow, version, status, input, available_at, deadline, parent_id, dedup_key,
           queue, queue_key, priority)
         SELECT $1, $2, $3, 'pending', $4::jsonb, due.at, due.at + $5::bigint * interval '1 millisecond', $6, $9,
           $11, $12, $13
         FROM (SELECT COALESCE($8::timestamptz, now() + COALESCE($7::bigint, 0) * interval '1 millisecond') AS at) due
         ON CONFLICT DO NOTHING
         RETURNING id, workflow, CASE WHEN available_at <= now() THEN pg_notify($10, 'run')::text END AS woke)
       SELECT id, workflow FROM inserted
       UNION ALL
       (SELECT id, workflow FROM ${this.s}.runs
        WHERE NOT EXISTS (SELECT 1 FROM inserted)
          AND (id = $1 OR ($9::text IS NOT NULL AND workflow = $2 AND dedup_key = $9 AND status IN ${UNFINISHED}))
        ORDER BY id = $1 DESC LIMIT 1)`,
      [
        run.id,
        run.workflow,
        run.version,
        run.input,
        run.timeoutMs ?? null,
        run.parentId ?? null,
        flow.delayMs,
        flow.startAt?.toISOString() ?? null,
        flow.dedupKey,
        this.db.channel,
        ...queueParams(flow),
      ],
      manager,
    );
    return rows[0];
  }

  /**
   * One pending run per key and window: the first call of a window inserts it, due at the window's
   * end; later calls replace its input while it has not started.
   */
  private async debounce(
    run: NewRun,
    flow: Extract<FlowStart, { kind: 'debounced' }>,
    manager?: EntityManager,
  ): Promise<StartedRun | undefined> {
    const { rows } = await this.db.query<StartedRun>(
      `WITH w AS (
         SELECT floor((extract(epoch FROM now()) * 1000 - $8) / $7)::bigint AS n),
       target AS (
         SELECT $1 || w.n AS id,
           'epoch'::timestamptz + ((w.n + 1) * $7::bigint + $8::bigint) * interval '1 millisecond' AS at
         FROM w),
       upserted AS (
         INSERT INTO ${this.s}.runs AS r (id, workflow, version, status, input, available_at, deadline, parent_id,
           queue, queue_key, priority)
         SELECT target.id, $2, $3, 'pending', $4::jsonb, target.at,
           target.at + $5::bigint * interval '1 millisecond', $6, $9, $10, $11
         FROM target
         ON CONFLICT (id) DO UPDATE SET input = EXCLUDED.input, version = EXCLUDED.version, updated_at = now()
           WHERE r.status = 'pending' AND r.attempts = 0
         RETURNING r.id)
       SELECT id, $2 AS workflow FROM target`,
      [
        flow.idPrefix,
        run.workflow,
        run.version,
        run.input,
        run.timeoutMs ?? null,
        run.parentId ?? null,
        flow.windowMs,
        flow.offsetMs,
        ...queueParams(flow),
      ],
      manager,
    );
    return rows[0];
  }
}
