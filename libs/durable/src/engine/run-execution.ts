import type { StepRow, ClaimedRun, Lease } from '../persistence/row-types';
import type { RunEvents } from '../events/run-events';
import type { WaitRunner } from './wait.runner';

/** Why an execution stopped before its workflow returned. */
export type HaltReason = 'parked' | 'lease-lost' | 'cancelled' | 'timeout' | 'mismatch' | 'shutdown';

/**
 * In-memory state of one execution of a run: its lease, the recorded steps it replays, occurrence
 * counters, and the halt flag that stops every later step once the run was parked, fenced or cancelled.
 */
export class RunExecution {
  readonly lease: Lease;
  private readonly recorded: Map<string, StepRow>;
  private readonly occurrences = new Map<string, number>();
  private readonly controller = new AbortController();
  private haltedPromise?: Promise<never>;
  private readonly stepErrors = new WeakMap<object, string>();
  private haltReason?: HaltReason;
  /** Set once the outcome is being written: our own 'done' notification is then no news. */
  ending = false;
  /** Set while compensations run: they follow the history's end, not its order. */
  compensating = false;
  private haltError?: Error;

  constructor(
    readonly run: ClaimedRun,
    executorId: string,
    steps: StepRow[],
    /** Durable waits of this execution (Durable.sleep / Durable.waitForSignal). */
    readonly waits: WaitRunner,
    /** The run's event stream (Durable.setEvent). */
    readonly runEvents?: RunEvents,
  ) {
    this.lease = { runId: run.id, executorId, epoch: run.epoch };
    this.recorded = new Map(steps.map((step) => [step.key, step]));
  }

  get runId(): string {
    return this.run.id;
  }

  /** Fires when the execution halts: steps in flight see it through their AbortSignal. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Rejects with the halt error once the execution halts (one promise shared by all its steps). */
  get whenHalted(): Promise<never> {
    if (!this.haltedPromise) {
      this.haltedPromise = new Promise<never>((_, reject) => {
        if (this.controller.signal.aborted) return reject(this.controller.signal.reason);
        this.controller.signal.addEventListener('abort', () => reject(this.controller.signal.reason), {
          once: true,
        });
      });
      this.haltedPromise.catch(() => undefined);
    }
    return this.haltedPromise;
  }

  get halted(): { reason: HaltReason; error: Error } | undefined {
    return this.haltReason && this.haltError ? { reason: this.haltReason, error: this.haltError } : undefined;
  }

  /** The key of the next call of `name` in this run: 'name#occurrence'. */
  nextKey(name: string): string {
    const occurrence = (this.occurrences.get(name) ?? 0) + 1;
    this.occurrences.set(name, occurrence);
    return `${name}#${occurrence}`;
  }

  /** The recorded outcome of `key`, consumed: each recorded step replays once. */
  takeRecorded(key: string): StepRow | undefined {
    const row = this.recorded.get(key);
    if (row) this.recorded.delete(key);
    return row;
  }

  /** Recorded steps this execution has not replayed yet (in recorded order). */
  unreplayedKeys(): string[] {
    return [...this.recorded.keys()];
  }

  /** Stops the execution: the first reason wins; later steps rethrow its error. */
  halt(reason: HaltReason, error: Error): void {
    if (this.haltReason) return;
    this.haltReason = reason;
    this.haltError = error;
    this.controller.abort(error);
  }

  /** Throws the halt error if the execution was halted. */
  throwIfHalted(): void {
    if (this.haltError) throw this.haltError;
  }

  /** Remembers which step threw an error, so a run failed by it can be resumed at that step. */
  markStepError(error: unknown, key: string): unknown {
    if (error !== null && typeof error === 'object' && !this.stepErrors.has(error))
      this.stepErrors.set(error, key);
    return error;
  }

  stepKeyOf(error: unknown): string | null {
    return error !== null && typeof error === 'object' ? (this.stepErrors.get(error) ?? null) : null;
  }
}
