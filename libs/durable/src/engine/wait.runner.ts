import { Injectable } from '@nestjs/common';
import { DurableStore } from '../persistence/durable.store';
import { decodeJson, encodeJson } from '../persistence/json-codec';
import type { StepRecord } from '../persistence/row-types';
import { CheckpointWriter } from './checkpoint.writer';
import { assertInHistory } from './replay';
import { delay } from './retry-delay';
import { RunExecution } from './run-execution';
import { RunParked } from './run-parked';

/** Waits this short are kept in memory; longer ones park the run and free the process. */
const IN_MEMORY_WAIT_MS = 1_000;

/**
 * Durable waits: a sleep records its wake time as a step and parks the run; a signal wait consumes a
 * stored signal (sent before or after the wait began) exactly once, or parks until one arrives.
 */
@Injectable()
export class WaitRunner {
  constructor(
    private readonly store: DurableStore,
    private readonly checkpoints: CheckpointWriter,
  ) {}

  async sleep(execution: RunExecution, ms: number): Promise<void> {
    execution.throwIfHalted();
    const key = execution.nextKey('$sleep');
    const recorded = execution.takeRecorded(key);
    if (recorded?.status === 'succeeded') return;
    if (!recorded) await assertInHistory(execution, key);
    const startedAt = recorded?.started_at ?? new Date();
    const wakeAt = recorded
      ? (decodeJson(recorded.output) as { wakeAt: Date }).wakeAt
      : new Date(Date.now() + ms);
    const remaining = new Date(wakeAt).getTime() - Date.now();
    const step = (status: StepRecord['status']): StepRecord => ({
      key,
      name: '$sleep',
      kind: 'sleep',
      status,
      output: encodeJson({ wakeAt: new Date(wakeAt) }, `Wake time of "${key}"`, Infinity),
      error: null,
      attempts: 1,
      startedAt,
      finishedAt: status === 'succeeded' ? new Date() : null,
    });
    if (remaining > IN_MEMORY_WAIT_MS) {
      if (!recorded) await this.checkpoints.write(execution, step('waiting'));
      await this.checkpoints.park(execution, 'sleeping', remaining);
    }
    if (remaining > 0) await delay(remaining, execution.signal);
    await this.checkpoints.write(execution, step('succeeded'));
  }

  async waitForSignal(
    execution: RunExecution,
    name: string,
    timeoutMs: number | undefined,
  ): Promise<unknown> {
    execution.throwIfHalted();
    const stepName = `$signal:${name}`;
    const key = execution.nextKey(stepName);
    const recorded = execution.takeRecorded(key);
    if (recorded?.status === 'succeeded') return decodeJson(recorded.output);
    if (!recorded) await assertInHistory(execution, key);
    const startedAt = recorded?.started_at ?? new Date();
    const recordedTimeout = recorded
      ? (decodeJson(recorded.output) as { timeoutAt?: Date }).timeoutAt
      : undefined;
    const timeoutAt = recorded
      ? recordedTimeout
      : timeoutMs === undefined
        ? undefined
        : new Date(Date.now() + timeoutMs);
    const step = (status: StepRecord['status'], output: string): StepRecord => ({
      key,
      name: stepName,
      kind: 'signal',
      status,
      output,
      error: null,
      attempts: 1,
      startedAt,
      finishedAt: status === 'succeeded' ? new Date() : null,
    });
    let waitingRecorded = recorded !== undefined;
    for (;;) {
      const result = await this.store.consumeSignal(execution.lease, name, step('succeeded', 'null'));
      if (!result.owned) throw await this.checkpoints.refused(execution);
      if (result.consumed) return decodeJson(result.payload);
      const remaining = timeoutAt === undefined ? null : new Date(timeoutAt).getTime() - Date.now();
      if (remaining !== null && remaining <= 0) {
        await this.checkpoints.write(execution, step('succeeded', encodeJson(undefined, key, Infinity)));
        return undefined;
      }
      if (!waitingRecorded) {
        const timeout = timeoutAt ? { timeoutAt: new Date(timeoutAt) } : {};
        await this.checkpoints.write(execution, step('waiting', encodeJson(timeout, key, Infinity)));
        waitingRecorded = true;
      }
      if (await this.store.parkForSignal(execution.lease, name, result.signalCount, remaining)) {
        const parked = new RunParked(execution.runId);
        execution.halt('parked', parked);
        throw parked;
      }
      // Refused: a signal arrived since the consume (loop and take it), or the lease is gone (the
      // next consume reports it).
    }
  }
}
