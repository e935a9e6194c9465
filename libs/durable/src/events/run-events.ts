import { Injectable } from '@nestjs/common';
import { messages } from '../durable.messages';
import { DurableOptionsHolder } from '../durable.options';
import { CheckpointWriter } from '../engine/checkpoint.writer';
import { DurableEvents } from '../engine/durable.events';
import { assertInHistory } from '../engine/replay';
import { setLongTimeout } from '../engine/retry-delay';
import type { RunExecution } from '../engine/run-execution';
import { RunNotFoundError } from '../errors';
import { isFinished, RunStatus } from '../interfaces';
import { decodeJson, encodeJson } from '../persistence/json-codec';
import { runRef } from './run-outcome-events';
import { RunEventsStore } from './run-events.store';

/** One item of a run's event stream (client.events). */
export type RunStreamItem =
  | { type: 'event'; seq: number; key: string; value: unknown; createdAt: Date }
  | { type: 'finished'; status: Extract<RunStatus, 'succeeded' | 'failed' | 'cancelled'> };

/** Options of client.events. */
export interface RunStreamOptions {
  /** Start after this event number (e.g. an SSE client's Last-Event-ID). Default 0: from the first. */
  after?: number;
  /** Ends the stream (quietly) when aborted, e.g. when the HTTP client goes away. */
  signal?: AbortSignal;
}

const UNIQUE_VIOLATION = '23505';

/**
 * The runs' event streams. Inside a run, Durable.setEvent appends an event (recorded as a step, so a
 * replay does not append it again); outside, getEvent waits for a key's value and events() streams a
 * run's events in order, both woken by NOTIFY ('event:<id>', 'done:<id>'), with a slow poll as the
 * safety net only.
 */
@Injectable()
export class RunEvents {
  constructor(
    private readonly store: RunEventsStore,
    private readonly checkpoints: CheckpointWriter,
    private readonly events: DurableEvents,
    private readonly options: DurableOptionsHolder,
  ) {}

  set(execution: RunExecution, key: string, value: unknown): Promise<void> {
    return execution.waitSet.track(() => this.append(execution, key, value));
  }

  private async append(execution: RunExecution, key: string, value: unknown): Promise<void> {
    execution.throwIfHalted();
    const name = `$event:${key}`;
    const stepKey = execution.nextKey(name);
    if (execution.takeRecorded(stepKey)) return; // appended by an earlier execution
    await assertInHistory(execution, stepKey);
    const encoded = encodeJson(value ?? null, `Value of event "${key}"`, this.options.value.maxPayloadBytes);
    const step = { key: stepKey, name };
    for (let tries = 1; ; tries++) {
      try {
        const { owned, seq } = await this.checkpoints.retrying(execution, 'an event', () =>
          this.store.append(execution.lease, step, { key, value: encoded }),
        );
        if (!owned) throw await this.checkpoints.refused(execution);
        if (seq !== null) this.events.emit({ type: 'run.event', ...runRef(execution), key, seq });
        return;
      } catch (error) {
        // Two events of one run at once (Promise.all): the second read its number before the first
        // committed. Its next try reads afresh.
        if ((error as { code?: string })?.code !== UNIQUE_VIOLATION || tries >= 5) throw error;
      }
    }
  }

  /** The latest value of `key`; waits for it while the run goes on. Undefined: run ended without it, or timeout. */
  async get<T>(runId: string, key: string, timeoutMs: number | undefined): Promise<T | undefined> {
    const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
    for (;;) {
      const change = this.nextChange(runId, deadline);
      try {
        const { status, found, value } = await this.store.latest(runId, key);
        if (!status) throw new RunNotFoundError(messages.runNotFound(runId));
        if (found) return decodeJson(value) as T;
        if (isFinished(status) || (deadline !== undefined && Date.now() >= deadline)) return undefined;
        await change.promise;
      } finally {
        change.cancel();
      }
    }
  }

  /** The run's events in order, then `finished` once the run has ended; from `after`, until aborted. */
  async *stream(runId: string, options: RunStreamOptions = {}): AsyncGenerator<RunStreamItem> {
    let after = options.after ?? 0;
    const { signal } = options;
    while (!signal?.aborted) {
      const change = this.nextChange(runId, undefined, signal);
      try {
        const { status, events } = await this.store.after(runId, after);
        if (!status) throw new RunNotFoundError(messages.runNotFound(runId));
        for (const event of events) {
          after = event.seq;
          const { seq, key, value } = event;
          yield { type: 'event', seq, key, value: decodeJson(value), createdAt: new Date(event.created_at) };
        }
        if (events.length > 0) continue; // maybe more pages
        if (isFinished(status)) {
          yield { type: 'finished', status: status as 'succeeded' | 'failed' | 'cancelled' };
          return;
        }
        await change.promise;
      } finally {
        change.cancel();
      }
    }
  }

  /**
   * Settles at the next sign that the run changed: an event appended or the run ended (NOTIFY, in any
   * process), the LISTEN connection back, the safety-net poll, the deadline, or the abort. Created
   * before the read it follows, so a change between the two is not missed.
   */
  private nextChange(
    runId: string,
    deadline: number | undefined,
    signal?: AbortSignal,
  ): { promise: Promise<void>; cancel(): void } {
    const cleanup: (() => void)[] = [];
    let wake!: () => void;
    const promise = new Promise<void>((resolve) => (wake = resolve));
    cleanup.push(this.events.onRunEvent(runId, () => wake()));
    cleanup.push(this.events.onRunEnded(runId, () => wake()));
    cleanup.push(this.events.onReconnected(() => wake()));
    const pollMs = this.options.value.pollIntervalMs * 10;
    const waitMs = deadline === undefined ? pollMs : Math.max(0, Math.min(pollMs, deadline - Date.now()));
    const timer = setLongTimeout(() => wake(), waitMs);
    cleanup.push(() => timer.clear());
    if (signal) {
      const onAbort = () => wake();
      signal.addEventListener('abort', onAbort, { once: true });
      cleanup.push(() => signal.removeEventListener('abort', onAbort));
    }
    return { promise, cancel: () => cleanup.forEach((fn) => fn()) };
  }
}
