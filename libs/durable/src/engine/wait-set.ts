import type { ParkOutcome, ParkRequest } from '../persistence/durable.store';
import type { StepRow } from '../persistence/row-types';
import { setLongTimeout } from './retry-delay';
import type { RunExecution } from './run-execution';

/** Waits this close to their wake time stay in memory rather than park the run. */
export const IN_MEMORY_WAIT_MS = 1_000;

/** What a blocked durable wait is waiting for. Times are on the database's clock (DurableClock). */
export type Blocker =
  | { kind: 'sleep'; wakeAt: number }
  | { kind: 'signal'; name: string; wakeAt?: number }
  | { kind: 'child'; key: string; childId: string };

/** Why a blocked wait may go on without the run being parked. */
export type Unblocked = { reason: 'due' } | { reason: 'signal' } | { reason: 'child'; step: StepRow };

/** Parks a run (fenced, retried): refused when something it waits for happened; throws when halted. */
export interface Parker {
  park(execution: RunExecution, request: ParkRequest): Promise<ParkOutcome>;
}

interface Entry {
  blocker: Blocker;
  unblock(reason: Unblocked): void;
}

/**
 * The durable operations of one execution in flight (steps, sleeps, signal and child waits), and the
 * park: when every operation in flight is a blocked wait, nothing can progress in memory, so the run is
 * parked in the database (one statement, waking on the earliest wake time, signal or child) and this
 * execution ends. Parallel waits (Promise.all of children, of signals and sleeps) park once, together.
 * A park refused because something arrived meanwhile unblocks the waits concerned instead.
 */
export class WaitSet {
  private active = 0;
  private readonly blocked = new Set<Entry>();
  private scheduled = false;
  private parking = false;

  constructor(
    private readonly execution: RunExecution,
    private readonly parker: Parker,
  ) {}

  /** Runs one durable operation, counted as in flight while it runs. */
  async track<T>(operation: () => Promise<T>): Promise<T> {
    this.active++;
    try {
      return await operation();
    } finally {
      this.active--;
      this.schedule();
    }
  }

  /**
   * Blocks the calling wait (already tracked) until its wake time passes in memory, a park attempt
   * finds what it waits for, or the execution halts (parked, cancelled, lease lost): then it rejects
   * with the halt's error.
   */
  block(blocker: Blocker): Promise<Unblocked> {
    return new Promise<Unblocked>((resolve, reject) => {
      const { execution } = this;
      if (execution.signal.aborted) return reject(execution.signal.reason);
      let timer: { clear(): void } | undefined;
      const onHalt = () => settle(() => reject(execution.signal.reason));
      const settle = (done: () => void) => {
        if (!this.blocked.delete(entry)) return;
        timer?.clear();
        execution.signal.removeEventListener('abort', onHalt);
        done();
      };
      const entry: Entry = { blocker, unblock: (reason) => settle(() => resolve(reason)) };
      this.blocked.add(entry);
      execution.signal.addEventListener('abort', onHalt, { once: true });
      if (blocker.kind !== 'child' && blocker.wakeAt !== undefined) {
        const remaining = Math.max(0, blocker.wakeAt - execution.clock.now());
        timer = setLongTimeout(() => entry.unblock({ reason: 'due' }), remaining);
      }
      this.schedule();
    });
  }

  private get stuck(): boolean {
    return !this.execution.halted && this.active > 0 && this.blocked.size === this.active;
  }

  /** Parks on the next turn, once siblings started in the same turn (Promise.all) have blocked too. */
  private schedule(): void {
    if (this.scheduled || this.parking || !this.stuck) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.tryPark();
    });
  }

  private async tryPark(): Promise<void> {
    if (this.parking || !this.stuck) return;
    this.parking = true;
    try {
      while (this.stuck) {
        const entries = [...this.blocked];
        const request = this.request(entries);
        if (!request) return; // a wake time has come: its timer unblocks it
        const outcome = await this.parker.park(this.execution, request);
        if (outcome.parked) return;
        this.execution.seenSignalCount = outcome.signalCount;
        const unblocked = this.unblockArrived(entries, outcome);
        if (unblocked > 0) return;
      }
    } catch (error) {
      // The parker halts the execution for parks, lease loss and cancels; anything else ends it too.
      this.execution.halt('failed-write', error instanceof Error ? error : new Error(String(error)));
    } finally {
      this.parking = false;
      this.schedule();
    }
  }

  private request(entries: Entry[]): ParkRequest | undefined {
    let wakeAt: number | undefined;
    const waitsFor = new Set<string>();
    const childKeys: string[] = [];
    for (const { blocker } of entries) {
      if (blocker.kind === 'child') {
        waitsFor.add(`$child:${blocker.childId}`);
        childKeys.push(blocker.key);
      } else {
        if (blocker.kind === 'signal') waitsFor.add(blocker.name);
        if (blocker.wakeAt !== undefined) wakeAt = Math.min(wakeAt ?? Infinity, blocker.wakeAt);
      }
    }
    const wakeInMs = wakeAt === undefined ? null : Math.ceil(wakeAt - this.execution.clock.now());
    if (wakeInMs !== null && wakeInMs <= 0) return undefined;
    return {
      status: waitsFor.size > 0 ? 'waiting' : 'sleeping',
      wakeInMs,
      waitsFor: [...waitsFor],
      seenCount: this.execution.seenSignalCount,
      childKeys,
    };
  }

  private unblockArrived(entries: Entry[], outcome: ParkOutcome): number {
    let count = 0;
    const pending = new Set(outcome.pending);
    const children = new Map(outcome.children.map((step) => [step.key, step]));
    for (const entry of entries) {
      const { blocker } = entry;
      if (blocker.kind === 'signal' && pending.has(blocker.name)) {
        entry.unblock({ reason: 'signal' });
        count++;
      } else if (blocker.kind === 'child' && children.has(blocker.key)) {
        entry.unblock({ reason: 'child', step: children.get(blocker.key)! });
        count++;
      }
    }
    return count;
  }
}
