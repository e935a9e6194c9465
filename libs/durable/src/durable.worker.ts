import { Injectable, Logger } from '@nestjs/common';
import { DurableOptionsHolder } from './durable.options';
import { CheckpointWriter } from './engine/checkpoint.writer';
import { DurableEvents } from './engine/durable.events';
import { delay } from './engine/retry-delay';
import { RunExecution } from './engine/run-execution';
import { WorkflowExecutor } from './engine/workflow.executor';
import { DurableStore } from './persistence/durable.store';
import type { ClaimedRun } from './persistence/row-types';
import { WorkflowRegistry } from './workflow.registry';

/**
 * Executes runs in this process within the `concurrency` bound: runs started here (inline, no claim
 * needed) and runs claimed from the queue when notified or polled. Owns the set of runs in flight.
 */
@Injectable()
export class DurableWorker {
  private readonly logger = new Logger('Durable');
  /** Executions in flight, one entry per claim (a run parked and re-claimed may briefly have two). */
  private readonly inFlight = new Set<InFlight>();
  /** The latest execution of each run in flight here. */
  private readonly byRun = new Map<string, InFlight>();
  private reserved = 0;
  private accepting = false;
  private claiming = false;
  /** Set when work may be waiting (a notification came, or a claim filled every free slot). */
  private moreWork = false;

  constructor(
    private readonly store: DurableStore,
    private readonly executor: WorkflowExecutor,
    private readonly registry: WorkflowRegistry,
    private readonly events: DurableEvents,
    private readonly options: DurableOptionsHolder,
    private readonly checkpoints: CheckpointWriter,
  ) {}

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
        for (const run of runs) this.launch(run);
        if (runs.length < free && !this.moreWork) return;
      }
    } catch (error) {
      this.logger.error(`Claiming runs failed: ${(error as Error).message}`);
    } finally {
      this.claiming = false;
    }
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
    await this.store.releaseRunsOf(this.options.value.executorId);
    const shutdown = new Error('This process is shutting down; the run was released to another replica.');
    for (const entry of this.inFlight) entry.execution?.halt('shutdown', shutdown);
  }

  private launch(run: ClaimedRun): void {
    const entry: InFlight = { done: Promise.resolve() };
    this.inFlight.add(entry);
    this.byRun.set(run.id, entry);
    entry.done = this.executor
      .prepare(run)
      .then(async (execution) => {
        entry.execution = execution;
        // A 'done' notification from elsewhere while we execute means a cancel (or a takeover).
        const off = this.events.onRunEnded(run.id, (ended) => {
          if (!ended && !execution.ending)
            void this.checkpoints.haltIfCancelled(execution).catch(() => undefined);
        });
        try {
          return await this.executor.execute(execution);
        } finally {
          off();
        }
      })
      .catch(async (error: Error) => {
        this.logger.error(`Run "${run.id}" could not be executed: ${error.message}`, error.stack);
        const lease = { runId: run.id, executorId: this.options.value.executorId, epoch: run.epoch };
        await this.store.releaseRun(lease).catch(() => undefined);
        return undefined;
      })
      .then((ended) => {
        // Free the slot before waking the caller, whose next start may want it.
        this.inFlight.delete(entry);
        if (this.byRun.get(run.id) === entry) this.byRun.delete(run.id);
        if (ended) this.events.emitRunEnded(run.id, ended);
        if (this.moreWork) void this.poke();
      });
  }
}

interface InFlight {
  execution?: RunExecution;
  done: Promise<void>;
}
