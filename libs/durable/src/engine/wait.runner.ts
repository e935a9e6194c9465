import { Injectable } from '@nestjs/common';
import { performance } from 'node:perf_hooks';
import { DEFAULT_VERSION } from '../durable.constants';
import { messages } from '../durable.messages';
import { DurableOptionsHolder } from '../durable.options';
import type { WorkflowMetadata } from '../decorators';
import { HistoryLimitError, RecordedError, RunConflictError } from '../errors';
import type { StepKind } from '../interfaces';
import { decodeJson, encodeJson } from '../persistence/json-codec';
import type { StepRecord, StepRow } from '../persistence/row-types';
import { StepStore } from '../persistence/step.store';
import { WorkflowRegistry } from '../workflow.registry';
import { CheckpointWriter } from './checkpoint.writer';
import { DurableEvents } from './durable.events';
import { ExecutionObserver } from './execution.observer';
import { assertInHistory } from './replay';
import { delay } from './retry-delay';
import { RunExecution } from './run-execution';
import { IN_MEMORY_WAIT_MS } from './wait-set';

/**
 * Durable waits: a sleep records its wake time as a step; a signal wait consumes a stored signal (sent
 * before or after the wait began) exactly once; a child run is started together with the parent's step
 * that waits for it, and its finish writes its outcome there. A wait that cannot go on blocks, and once
 * every operation of the execution is blocked the run is parked (see WaitSet) and resumed by whichever
 * replica claims it when it is due.
 */
@Injectable()
export class WaitRunner {
  constructor(
    private readonly steps: StepStore,
    private readonly checkpoints: CheckpointWriter,
    private readonly registry: WorkflowRegistry,
    private readonly options: DurableOptionsHolder,
    private readonly observer: ExecutionObserver,
    private readonly events: DurableEvents,
  ) {}

  sleep(execution: RunExecution, ms: number): Promise<void> {
    return execution.waitSet.track(async () => {
      const { key, recorded, record } = await this.begin(execution, '$sleep', 'sleep');
      if (recorded?.status === 'succeeded') return;
      const wakeAt = recorded
        ? new Date((decodeJson(recorded.output) as { wakeAt: Date }).wakeAt).getTime()
        : execution.clock.now() + ms;
      const output = encodeJson({ wakeAt: new Date(wakeAt) }, `Wake time of "${key}"`, Infinity);
      const remaining = wakeAt - execution.clock.now();
      if (remaining > IN_MEMORY_WAIT_MS) {
        if (!recorded) await this.write(execution, record('waiting', output));
        await execution.waitSet.block({ kind: 'sleep', wakeAt });
      } else if (remaining > 0) {
        await delay(remaining, execution.signal);
      }
      await this.write(execution, record('succeeded', output));
    });
  }

  waitForSignal(execution: RunExecution, name: string, timeoutMs: number | undefined): Promise<unknown> {
    return execution.waitSet.track(async () => {
      const { key, recorded, record } = await this.begin(execution, `$signal:${name}`, 'signal');
      if (recorded?.status === 'succeeded') return decodeJson(recorded.output);
      const timeoutAt = recorded
        ? (decodeJson(recorded.output) as { timeoutAt?: Date }).timeoutAt?.getTime()
        : timeoutMs === undefined
          ? undefined
          : execution.clock.now() + timeoutMs;
      let waitingRecorded = recorded !== undefined;
      for (;;) {
        const result = await this.checkpoints.retrying(execution, 'a signal consume', () =>
          this.steps.consumeSignal(execution.lease, name, record('succeeded', 'null')),
        );
        if (!result.owned) throw await this.checkpoints.refused(execution);
        if (result.consumed) return decodeJson(result.payload);
        if (timeoutAt !== undefined && timeoutAt <= execution.clock.now()) {
          await this.write(execution, record('succeeded', encodeJson(undefined, key, Infinity)));
          return undefined;
        }
        if (!waitingRecorded) {
          const timeout = timeoutAt === undefined ? {} : { timeoutAt: new Date(timeoutAt) };
          await this.write(execution, record('waiting', encodeJson(timeout, key, Infinity)));
          waitingRecorded = true;
        }
        // Unblocked when a signal of this name is pending or the timeout passed: consume again.
        await execution.waitSet.block({ kind: 'signal', name, wakeAt: timeoutAt });
      }
    });
  }

  /**
   * A @Workflow called inside a workflow: a child run, recorded as a step of kind 'child' whose id is
   * `${parentRunId}:${stepKey}`. The parent does not hold a worker slot while the child runs: it parks
   * until the child's finish writes its outcome into that step.
   */
  child(execution: RunExecution, meta: WorkflowMetadata, args: unknown[]): Promise<unknown> {
    return execution.waitSet.track(async () => {
      const { key, recorded, record } = await this.begin(execution, meta.name, 'child');
      if (recorded?.status === 'succeeded') return decodeJson(recorded.output);
      if (recorded?.status === 'failed') throw execution.markStepError(childError(recorded), key);
      const childId = `${execution.runId}:${key}`;
      if (!recorded) {
        try {
          // The start is the child step's one attempt: the child's spans nest under it.
          const observed = { key, name: meta.name, kind: 'child' as const, attempt: 1 };
          await this.observer.stepAttempt(execution, observed, () =>
            this.startChild(execution, key, childId, meta, args, record),
          );
        } catch (error) {
          execution.throwIfHalted();
          const failed = record('failed', null);
          failed.error = JSON.stringify({ name: (error as Error).name, message: (error as Error).message });
          await this.write(execution, failed);
          throw execution.markStepError(error, key);
        }
      }
      for (;;) {
        const unblocked = await execution.waitSet.block({ kind: 'child', key, childId });
        if (unblocked.reason !== 'child') continue;
        const { step } = unblocked;
        if (step.status === 'succeeded') return decodeJson(step.output);
        throw execution.markStepError(childError(step), key);
      }
    });
  }

  private async startChild(
    execution: RunExecution,
    key: string,
    childId: string,
    meta: WorkflowMetadata,
    args: unknown[],
    record: (status: StepRecord['status'], output: string | null) => StepRecord,
  ): Promise<void> {
    if (execution.historySteps >= execution.limits.maxSteps) {
      throw new HistoryLimitError(messages.historySteps(execution.runId, key, execution.limits.maxSteps));
    }
    const registered = this.registry.latest(meta.name);
    const input = encodeJson(args, `Input of workflow "${meta.name}"`, this.options.value.maxPayloadBytes);
    const waiting = record('waiting', encodeJson({ runId: childId }, key, Infinity));
    const child = {
      id: childId,
      workflow: meta.name,
      version: registered?.version ?? DEFAULT_VERSION,
      input,
      timeoutMs: registered?.timeoutMs,
      // Inside the parent's execution: the child's spans nest under the parent's.
      traceContext: this.observer.startContext(),
    };
    const started = await this.checkpoints.retrying(execution, 'a child start', () =>
      this.steps.startChild(execution.lease, waiting, child),
    );
    if (!started.owned) throw await this.checkpoints.refused(execution);
    const foreign =
      started.existing_parent !== null &&
      (started.existing_parent !== execution.runId || started.existing_step !== key);
    if (foreign) throw new RunConflictError(messages.childIdTaken(execution.runId, key, childId));
    execution.historySteps++;
    if (started.started) {
      const { workflow, version } = child;
      this.events.emit({ type: 'run.started', runId: childId, workflow, version, parentId: execution.runId });
    }
  }

  /** Takes the next key of a wait and its recorded row; checks the history matches. */
  private async begin(execution: RunExecution, name: string, kind: StepKind) {
    execution.throwIfHalted();
    const key = execution.nextKey(name);
    const recorded = execution.takeRecorded(key);
    if (!recorded) await assertInHistory(execution, key);
    const started = performance.now();
    const record = (status: StepRecord['status'], output: string | null): StepRecord => ({
      key,
      name,
      kind,
      status,
      output,
      error: null,
      attempts: 1,
      elapsedMs: performance.now() - started,
    });
    return { key, recorded, record };
  }

  /** A wait's checkpoint; an engine failure (not transient) stops the execution, releasing the run. */
  private async write(execution: RunExecution, step: StepRecord): Promise<void> {
    try {
      await this.checkpoints.write(execution, step);
    } catch (error) {
      execution.halt('failed-write', error instanceof Error ? error : new Error(String(error)));
      throw error;
    }
  }
}

/** The error a failed (or cancelled) child run recorded, as its parent's step error. */
function childError(step: StepRow): RecordedError {
  return new RecordedError(step.error ?? { name: 'Error', message: 'The child run failed.' });
}
