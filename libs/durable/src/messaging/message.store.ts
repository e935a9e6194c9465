import { Injectable } from '@nestjs/common';
import type { RunStatus } from '../interfaces';
import { DurableDatabase } from '../persistence/durable.database';

/** What a send found: the run's status (undefined: no such run) and whether the message was stored. */
export interface SendOutcome {
  status: RunStatus | undefined;
  stored: boolean;
  /** A message with this idempotency key was stored before (by this call's snapshot). */
  duplicate: boolean;
  /** Set when the run's pending-signal limits refused the message. */
  limit?: 'signals' | 'bytes';
}

/**
 * Messages are signals with an optional idempotency key: stored once per (run, key), consumed exactly
 * once by the first matching Durable.waitForSignal(topic), in the order sent.
 */
@Injectable()
export class MessageStore {
  constructor(private readonly db: DurableDatabase) {}

  /**
   * One statement: locks the run row (so a concurrent park sees the message or the counter move, as
   * with client.signal), stores the message unless the run has finished or the key was used, then
   * bumps the run's signal counter and wakes it if it waits for this topic.
   */
  async send(
    runId: string,
    topic: string,
    payload: string,
    idempotencyKey: string | null,
    limits: { maxPending: number; maxBytes: number },
  ): Promise<SendOutcome> {
    const s = this.db.s;
    const { rows } = await this.db.query<{
      status: RunStatus | null;
      stored: boolean;
      duplicate: boolean;
      over_count: boolean;
      over_bytes: boolean;
    }>(
      `WITH run AS (
         SELECT id, status FROM ${s}.runs WHERE id = $1 FOR UPDATE),
       earlier AS (
         SELECT 1 FROM ${s}.signals WHERE run_id = $1 AND idempotency_key = $4),
       pending AS (
         SELECT count(*) AS n, COALESCE(sum(octet_length(payload::text)), 0) + octet_length($3) AS bytes
         FROM ${s}.signals WHERE run_id = $1 AND consumed_by IS NULL),
       stored AS (
         INSERT INTO ${s}.signals (run_id, name, payload, idempotency_key)
         SELECT $1, $2, $3::jsonb, $4 FROM run, pending
         WHERE run.status IN ('pending', 'running', 'sleeping', 'waiting') AND NOT EXISTS (SELECT 1 FROM earlier)
           AND pending.n < $6 AND pending.bytes <= $7
         ON CONFLICT (run_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
         RETURNING run_id),
       woken AS (
         UPDATE ${s}.runs SET signal_count = signal_count + 1, updated_at = now(),
           available_at = CASE WHEN status = 'waiting' AND $2 = ANY(waits_for) THEN now() ELSE available_at END
         WHERE id = (SELECT run_id FROM stored)
         RETURNING status = 'waiting' AND $2 = ANY(waits_for) AS due)
       SELECT (SELECT status FROM run) AS status,
              EXISTS (SELECT 1 FROM stored) AS stored,
              EXISTS (SELECT 1 FROM earlier) AS duplicate,
              (SELECT n >= $6 FROM pending) AS over_count,
              (SELECT bytes > $7 FROM pending) AS over_bytes,
              (SELECT pg_notify($5, 'run') FROM woken WHERE due) AS notified`,
      [runId, topic, payload, idempotencyKey, this.db.channel, limits.maxPending, limits.maxBytes],
    );
    const row = rows[0];
    return {
      status: row.status ?? undefined,
      stored: row.stored,
      duplicate: row.duplicate,
      limit: row.over_count ? 'signals' : row.over_bytes ? 'bytes' : undefined,
    };
  }
}
