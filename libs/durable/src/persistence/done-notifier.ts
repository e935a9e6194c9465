import { Injectable, Logger } from '@nestjs/common';
import { messages } from '../durable.messages';
import { DurableDatabase } from './durable.database';

/** Notifications sent by one statement at most (each id is one NOTIFY 'done:<id>'). */
const BATCH = 500;

/**
 * Sends NOTIFY 'done:<id>' for runs that finished here, after their finish committed, batched.
 *
 * Why not in the finish's own statement: PostgreSQL serializes every transaction that notifies, from
 * its commit until the commit is flushed (one lock for the whole cluster), so a finish that notifies
 * waits for every other notifying commit's WAL flush: with fsync on, one flush per finished run, and no
 * group commit. Here the finishes commit without it, and one statement notifies for every run that
 * finished meanwhile, committed asynchronously (`synchronous_commit = off` for that statement only: it
 * writes no data, so nothing needs its flush, and the lock is held for microseconds).
 *
 * A notification is a hint: a process that crashes between a finish and its notification leaves the
 * waiters in other processes to their slow poll (they read the run then). Waiters in this process
 * learn of the end from the in-process events and do not need it.
 */
@Injectable()
export class DoneNotifier {
  private readonly logger = new Logger('Durable');
  private pending: string[] = [];
  private sending?: Promise<void>;

  constructor(private readonly db: DurableDatabase) {}

  /** Notifies of `id`'s end: now if nothing is being sent, else with the next batch. */
  finished(id: string): void {
    this.pending.push(id);
    this.sending ??= this.send().finally(() => (this.sending = undefined));
  }

  /** Waits until every notification asked for so far was sent (or given up). */
  async drain(): Promise<void> {
    while (this.sending) await this.sending;
  }

  private async send(): Promise<void> {
    while (this.pending.length > 0) {
      const ids = this.pending.splice(0, BATCH);
      try {
        await this.db.query(
          `SELECT set_config('synchronous_commit', 'off', true),
             (SELECT count(pg_notify($1, 'done:' || id)) FROM unnest($2::text[]) AS id)`,
          [this.db.channel, ids],
        );
      } catch (error) {
        // The database is unreachable: waiters elsewhere fall back to their poll.
        this.logger.warn(messages.doneNotifyFailed(ids.length, error as Error));
      }
    }
  }
}
