import { Injectable, Logger } from '@nestjs/common';
import { messages } from './durable.messages';
import { DurableOptionsHolder } from './durable.options';
import { CheckpointWriter } from './engine/checkpoint.writer';
import { DurableClock } from './engine/durable.clock';
import { DurableEvents } from './engine/durable.events';
import { delay } from './engine/retry-delay';
import { RunExecution } from './engine/run-execution';
import { isTransient } from './engine/transient-errors';
import { untilAnswered } from './engine/until-answered';
import { ExecutionEnd, WorkflowExecutor } from './engine/workflow.executor';
import { DurableStore } from './persistence/durable.store';
import type { ClaimedRun } from './persistence/row-types';
import { MIN_SPACING_MS, ratePacing } from './queues/queue-claim';
import { WorkflowRegistry } from './workflow.registry';

/** How long shutdown keeps trying to hand its runs back when the database does not answer. */
const RELEASE_AT_SHUTDOWN_MS = 5_000;
/** Paced claims go on this many ticks (at least a second) after this process last admitted a rate-limited run. */
const PACE_TICKS = 20;
const PACE_MIN_MS = 1_000;

/**
 * Executes runs in this process within the `concurrency` bound: runs started here (inline, no claim
 * needed) and runs claimed from the queue when notified or polled. Owns the set of runs in flight, and
 * makes sure none stays owned here without executing: an execution that cannot go on releases its run
 * (retrying until the database answers), and the sweep releases runs the database says are ours while
 * nothing here executes them (a claim or a start whose reply was lost).
 */
@Injectable()
export class DurableWorker {
  private readonly logger = new Logger('Durable');
  /** Executions in flight, one entry per claim (a run parked and re-claimed may briefly have two). */
  private readonly inFlight = new Set<InFlight>();
  /** The latest execution of each run in flight here. */
  private readonly byRun = new Map<string, InFlight>();
  /** Aborted when the process stops: ends the retries of finishes and releases. */
  private readonly lifetime = new AbortController();
  /** Runs found owned here but not executed at the previous sweep (released if still so at the next). */
  private stranded = new Set<string>();
  private reserved = 0;
  private accepting = false;
  private claiming = false;
  private claimFailing = false;
  /** Set when work may be waiting (a notification came, or a claim filled every free slot). */
  private moreWork = false;
  /** The rate-limited queues; paced claims (pace()) go on until pacedUntil (Date.now()). */
  private readonly rateLimited: ReadonlySet<string>;
  private pacedUntil = 0;
  /** The pace of claims for the rate-limited queues, in ms; null when the poll is often enough. */
  readonly paceMs: number | null;

  constructor(
    private readonly store: DurableStore,
    private readonly executor: WorkflowExecutor,
    private readonly registry: WorkflowRegistry,
    private readonly events: DurableEvents,
    private readonly options: DurableOptionsHolder,
    private readonly checkpoints: CheckpointWriter,
    private readonly clock: DurableClock,
  ) {
    const limited = options.value.queues.filter((q) => q.rateLimit !== null);
    this.rateLimited = new Set(limited.map((q) => q.name));
    // A rate-limited queue admits `burst` runs per window (ratePacing): claims must come that often.
    const pace = Math.min(
      ...limited.map((q) => Math.max(MIN_SPACING_MS, ratePacing(q.rateLimit!, q.ratePeriodMs!).windowMs)),
    );
    this.paceMs = pace < options.value.pollIntervalMs ? Math.ceil(pace) : null;
  }

  get running(): boolean {
    return this.accepting;
  }

  start(): void {
    if (!this.options.value.worker || this.registry.size === 0) return;
    this.accepting = true;
    this.events.onRunAvailable(() => {
      this.moreWork = true;
      void this.poke();
    });
  }

  /** Settles when this process stops executing the run; undefined if it is not executing it. */
  executionOf(runId: string): Promise<void> | undefined {
    return this.byRun.get(runId)?.done;
  }

  /** Takes a slot for a run about to be started here; false when this process should not execute it. */
  reserveSlot(): boolean {
    if (!this.accepting || this.inFlight.size + this.reserved >= this.options.value.concurrency) return false;
    this.reserved++;
    return true;
  }

  releaseSlot(): void {
    this.reserved--;
  }

  /** Executes a run this process inserted already claimed (after reserveSlot). */
  executeReserved(run: ClaimedRun): void {
    this.reserved--;
    this.launch(run);
  }

  /**
   * Called every paceMs: claims again while this process recently admitted runs of a rate-limited queue
   * (a backlog of it is likely), since such a queue admits only a few runs per claim (ratePacing).
   */
  pace(): void {
    if (Date.now() < this.pacedUntil) void this.poke();
  }

  /** Claims due runs into the free slots, repeating while claims come back full. */
  async poke(): Promise<void> {
    if (!this.accepting) return;
    if (this.claiming) {
      this.moreWork = true;
      return;
    }
    this.claiming = true;
    try {
      for (;;) {
        this.moreWork = false;
        const free = this.options.value.concurrency - this.inFlight.size - this.reserved;
        if (free <= 0 || !this.accepting) {
          this.moreWork = true;
          return;
        }
        const runs = await this.store.claimRuns(this.options.value.executorId, this.registry.served(), free);
        this.claimFailing = false;
        if (this.paceMs !== null && runs.some((run) => run.queue && this.rateLimited.has(run.queue)))
          this.pacedUntil = Date.now() + Math.max(PACE_MIN_MS, PACE_TICKS * this.paceMs);
        for (const run of runs) this.launch(run);
        if (runs.length < free && !this.moreWork) return;
      }
    } catch (error) {
      // A claim whose reply was lost may have claimed runs: the sweep releases them (releaseStranded).
      if (!this.claimFailing || !isTransient(error))
        this.logger.warn(messages.claimFailed((error as Error).message));
      this.claimFailing = isTransient(error);
    } finally {
      this.claiming = false;
    }
  }

  /**
   * Releases the runs the database says this executor owns while nothing here executes them, when they
   * were found so at the previous sweep too (with the same epoch): a claim in flight at one sweep has
   * launched by the next.
   */
  async releaseStranded(): Promise<number> {
    const { executorId } = this.options.value;
    const executing = new Map<string, number>();
    for (const entry of this.inFlight) executing.set(entry.run.id, entry.run.epoch);
    const owned = await this.store.ownedRuns(executorId);
    const now = new Set<string>();
    let released = 0;
    for (const run of owned) {
      if (executing.get(run.id) === run.epoch) continue;
      const mark = `${run.id}\u0000${run.epoch}`;
      now.add(mark);
      if (!this.stranded.has(mark)) continue;
      await this.store.releaseRun({ runId: run.id, executorId, epoch: run.epoch });
      released++;
    }
    this.stranded = now;
    if (released > 0) this.logger.warn(messages.strandedReleased(released));
    return released;
  }

  /** Stops claiming, lets runs in flight finish within `timeoutMs`, then gives the rest back. */
  async stop(timeoutMs: number): Promise<void> {
    this.accepting = false;
    const drained = Promise.allSettled([...this.inFlight].map((entry) => entry.done));
    const bound = new AbortController();
    await Promise.race([drained, delay(timeoutMs, bound.signal).catch(() => undefined)]);
    bound.abort();
    if (this.inFlight.size > 0) {
      this.logger.warn(
        `Shutting down with ${this.inFlight.size} run(s) in flight; releasing them to other replicas.`,
      );
    }
    const shutdown = new Error('This process is shutting down; the run was released to another replica.');
    for (const entry of this.inFlight) entry.execution?.halt('shutdown', shutdown);
    const giveUp = AbortSignal.timeout(RELEASE_AT_SHUTDOWN_MS);
    await untilAnswered(() => this.store.releaseRunsOf(this.options.value.executorId), {
      signal: giveUp,
    }).catch((error: Error) =>
      this.logger.warn(messages.shutdownReleaseFailed(error?.message ?? String(error))),
    );
    this.lifetime.abort(shutdown);
  }

  private launch(run: ClaimedRun): void {
    this.clock.observe(run.db_now);
    const entry: InFlight = { run, done: Promise.resolve() };
    this.inFlight.add(entry);
    this.byRun.set(run.id, entry);
    entry.done = this.execute(entry).then((end) => {
      // Free the slot before waking the caller, whose next start may want it.
      this.inFlight.delete(entry);
      if (this.byRun.get(run.id) === entry) this.byRun.delete(run.id);
      if (end.kind === 'finished') this.events.emitRunEnded(run.id, end.ended);
      // A queued run ending may have freed a slot of its queue: claim again at once, not at the next poll.
      if (this.moreWork || run.queue) void this.poke();
    });
  }

  private async execute(entry: InFlight): Promise<ExecutionEnd> {
    const { run } = entry;
    let end: ExecutionEnd;
    try {
      const execution = await this.executor.prepare(run, this.lifetime.signal);
      entry.execution = execution;
      // A 'done' notification from elsewhere while we execute means a cancel (or a takeover).
      const off = this.events.onRunEnded(run.id, (ended) => {
        if (!ended && !execution.ending)
          void this.checkpoints.haltIfCancelled(execution).catch(() => undefined);
      });
      try {
        end = await this.executor.execute(execution, this.lifetime.signal);
      } finally {
        off();
      }
    } catch (error) {
      end = { kind: 'release', error: error as Error };
    }
    if (end.kind === 'release' && !this.lifetime.signal.aborted) {
      this.logger.error(
        messages.runReleased(run.id, end.error?.message ?? String(end.error)),
        end.error?.stack,
      );
      const lease = { runId: run.id, executorId: this.options.value.executorId, epoch: run.epoch };
      // Until the database answers: a run must not stay owned here while nothing executes it.
      await untilAnswered(() => this.store.releaseRun(lease), { signal: this.lifetime.signal }).catch(
        () => undefined,
      );
    }
    return end;
  }
}

interface InFlight {
  run: ClaimedRun;
  execution?: RunExecution;
  done: Promise<void>;
}
