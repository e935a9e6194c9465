import { setMaxListeners } from 'node:events';
import type { RunEvents } from '../events/run-events';
import type { StepRow, ClaimedRun, Lease } from '../persistence/row-types';
import type { DurableClock } from './durable.clock';
import type { WaitRunner } from './wait.runner';
import { Parker, WaitSet } from './wait-set';

/** Why an execution stopped before its workflow returned. */
export type HaltReason =
  | 'parked'
  | 'lease-lost'
  | 'cancelled'
  | 'timeout'
  | 'mismatch'
  | 'shutdown'
  /** An engine write failed for good (not a transient error): the run is released, not failed. */
  | 'failed-write';

/** What an execution works with, besides its run and history. */
export interface ExecutionServices {
  waits: WaitRunner;
  clock: DurableClock;
  parker: Parker;
  limits: HistoryLimits;
  runEvents?: RunEvents;
}

/** The history caps of a run, from the module options. */
export interface HistoryLimits {
  maxSteps: number;
  maxBytes: number;
}

/**
 * In-memory state of one execution of a run: its lease, the recorded steps it replays, occurrence
 * counters, the waits in flight (and the park), and the halt flag that stops every later step once the
 * run was parked, fenced or cancelled.
 */
export class RunExecution {
  readonly lease: Lease;
  /** The durable operations in flight and the park when all of them are blocked waits. */
  readonly waitSet: WaitSet;
  private readonly recorded: Map<string, StepRow>;
  private readonly occurrences = new Map<string, number>();
  private readonly controller = new AbortController();
  private haltedPromise?: Promise<never>;
  private readonly stepErrors = new WeakMap<object, string>();
  private haltReason?: HaltReason;
  private haltError?: Error;
  /** Set once the outcome is being written: our own 'done' notification is then no news. */
  ending = false;
  /** Set while compensations run: they follow the history's end, not its order. */
  compensating = false;
  /**
   * The run's signal counter as of what this execution knows (its history's snapshot, then each
   * refused park): a park is refused once the counter moved past it (a signal or a child arrived).
   */
  seenSignalCount: number;
  /** The first new step of an execution that recovered a run clears the run's stall count. */
  progressPending: boolean;
  /** Steps and bytes in the run's history, for the caps. */
  historySteps: number;
  historyBytes: number;

  /** Durable waits of this execution (Durable.sleep / Durable.waitForSignal / child runs). */
  readonly waits: WaitRunner;
  /** The database's clock, for wake times and deadlines. */
  readonly clock: DurableClock;
  readonly limits: HistoryLimits;
  /** The run's event stream (Durable.setEvent). */
  readonly runEvents?: RunEvents;

  constructor(
    readonly run: ClaimedRun,
    executorId: string,
    steps: StepRow[],
    services: ExecutionServices,
  ) {
    this.waits = services.waits;
    this.clock = services.clock;
    this.limits = services.limits;
    this.runEvents = services.runEvents;
    this.lease = { runId: run.id, executorId, epoch: run.epoch };
    this.recorded = new Map(steps.map((step) => [step.key, step]));
    this.seenSignalCount = run.signal_count ?? 0;
    this.progressPending = (run.stalls ?? 1) > 1;
    this.historySteps = steps.length;
    this.historyBytes = steps.reduce((sum, step) => sum + sizeOf(step), 0);
    this.waitSet = new WaitSet(this, services.parker);
    // Every blocked wait listens for the halt: a fan-out of many children means many listeners.
    setMaxListeners(0, this.controller.signal);
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

/** Approximate stored size of a step row's JSON values. */
function sizeOf(step: StepRow): number {
  let bytes = 0;
  for (const value of [step.output, step.error, step.undo_args]) {
    if (value !== null && value !== undefined) bytes += Buffer.byteLength(JSON.stringify(value));
  }
  return bytes;
}
