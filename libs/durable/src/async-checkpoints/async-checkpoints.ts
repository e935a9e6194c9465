import { Injectable, Logger } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { messages } from '../durable.messages';
import { DurableOptionsHolder } from '../durable.options';
import type { Lease, StepRecord } from '../persistence/row-types';

/**
 * In the WHERE clause of a checkpoint INSERT: the statement's own (implicit) transaction commits with
 * `synchronous_commit = off`, so PostgreSQL acknowledges it before its WAL is flushed. The setting is
 * local to that transaction: the connection's next statement commits as configured again.
 */
const ASYNC_COMMIT = ` AND set_config('synchronous_commit', 'off', true) = 'off'`;

/** How one fenced write of a run commits, decided just before it is sent. */
export interface CommitPlan {
  /** This write (a checkpoint) may commit asynchronously. */
  async: boolean;
  /** The run's asynchronously committed checkpoints this write must find, or undefined when none. */
  guard?: string[];
  /** The key the write records (a checkpoint), if any. */
  key?: string;
  /** Autocommit (its success is its commit), as opposed to a statement inside a step's transaction. */
  autocommit: boolean;
}

/**
 * The `asyncCheckpoints` option. The checkpoint of a non-transactional step that succeeded commits
 * asynchronously; every other write stays synchronous. A database crash may lose asynchronous commits
 * that were acknowledged, never a synchronous one nor anything before it in the WAL, which is written
 * and flushed in order: a synchronous commit is durable only once the WAL up to it is, including every
 * asynchronous commit it could see. So each execution keeps the keys of its asynchronous checkpoints
 * that no synchronous commit of its own has covered yet, and its next writes carry a guard: they write
 * only if those checkpoints are still in the database. When the database lost one, the guarded write
 * changes nothing, and the run is released to resume from its durable history (the lost steps run
 * again, as steps interrupted by a process crash do); nothing is ever committed on top of a lost step.
 */
@Injectable()
export class AsyncCheckpoints {
  private readonly logger = new Logger('Durable');
  /** Per execution (its lease object): asynchronous checkpoints not yet covered by a synchronous commit. */
  private readonly unconfirmed = new WeakMap<Lease, Set<string>>();
  private readonly enabled: boolean;

  constructor(options: DurableOptionsHolder) {
    this.enabled = options.value.asyncCheckpoints;
  }

  /** Called just before a fenced write of the run (`step`: the checkpoint it records, if any). */
  plan(lease: Lease, step?: StepRecord, manager?: EntityManager): CommitPlan {
    const pending = this.unconfirmed.get(lease);
    return {
      async:
        this.enabled &&
        step !== undefined &&
        manager === undefined &&
        step.kind === 'step' &&
        step.status === 'succeeded' &&
        // The library's own steps ($undo:..., compensations) stay synchronous.
        !step.name.startsWith('$'),
      guard: pending && pending.size > 0 ? [...pending] : undefined,
      key: step?.key,
      autocommit: manager === undefined,
    };
  }

  /**
   * SQL to append to the write's fencing predicate: `$param` (a text[] holding `plan.guard`) must name
   * only steps of run `$1` recorded as succeeded; plus the asynchronous commit when the plan says so.
   * Empty when neither applies, so the statement is the same as without the option.
   */
  sql(plan: CommitPlan, schema: string, param: number): string {
    const guard = plan.guard
      ? ` AND NOT EXISTS (SELECT 1 FROM unnest($${param}::text[]) AS g(key) WHERE NOT EXISTS (
           SELECT 1 FROM ${schema}.steps x WHERE x.run_id = $1 AND x.key = g.key AND x.status = 'succeeded'))`
      : '';
    return guard + (plan.async ? ASYNC_COMMIT : '');
  }

  /** The statement's parameters, with the guard's appended when it has one. */
  params(plan: CommitPlan, params: unknown[]): unknown[] {
    return plan.guard ? [...params, plan.guard] : params;
  }

  /**
   * After the write. Written: the checkpoints it found are covered (if it was synchronous: durable; if
   * asynchronous, durable whenever it is, which the next guard checks) and an asynchronous one joins the
   * set. Every guarded statement locks the run row, so it commits with a commit record of its own (after
   * theirs in the WAL) even when it inserts nothing. Refused while guarded: if the run is still ours (`release` succeeds, fenced), the database lost a
   * checkpoint, and the run is now back in the queue.
   */
  async settle(
    lease: Lease,
    plan: CommitPlan,
    written: boolean,
    release: () => Promise<boolean>,
  ): Promise<void> {
    if (!written) {
      if (plan.guard && (await release()))
        this.logger.error(messages.checkpointLost(lease.runId, plan.guard));
      return;
    }
    // Inside a step's transaction nothing is committed yet: the set stays as it was, re-checked later.
    if (!plan.autocommit) return;
    let pending = this.unconfirmed.get(lease);
    for (const key of plan.guard ?? []) pending?.delete(key);
    if (plan.async && plan.key !== undefined) {
      if (!pending) this.unconfirmed.set(lease, (pending = new Set()));
      pending.add(plan.key);
    }
  }
}
