import { Injectable, Logger } from '@nestjs/common';
import { durableScope } from '../context';
import { messages } from '../durable.messages';
import { DurableOptionsHolder } from '../durable.options';
import { RunSetAsideError, WorkflowTimeoutError } from '../errors';
import { RunEvents } from '../events/run-events';
import { runClaimedEvent, runOutcomeEvents, runRef } from '../events/run-outcome-events';
import type { RunOutcomeRecord } from '../persistence/durable.store';
import { DurableStore } from '../persistence/durable.store';
import { decodeJson, encodeJson } from '../persistence/json-codec';
import type { ClaimedRun } from '../persistence/row-types';
import { StepStore } from '../persistence/step.store';
import { WorkflowRegistry } from '../workflow.registry';
import { CheckpointWriter } from './checkpoint.writer';
import { Compensator } from './compensator';
import { DurableClock } from './durable.clock';
import { DurableEvents, RunEnded } from './durable.events';
import { ExecutionObserver } from './execution.observer';
import { toErrorInfo } from './error-info';
import { setLongTimeout } from './retry-delay';
import { RunExecution } from './run-execution';
import { untilAnswered } from './until-answered';
import { WaitRunner } from './wait.runner';

/** How an execution ended, and what the worker must still do about the run. */
export type ExecutionEnd =
  /** The run ended here (the worker announces it once its slot is free). */
  | { kind: 'finished'; ended: RunEnded }
  /** Parked, fenced, cancelled, or finished by another executor: nothing left to do here. */
  | { kind: 'gone' }
  /** The run is still ours but will not go on here: release it (it counts as a stall). */
  | { kind: 'release'; error: Error };

/**
 * Executes one claimed run to its end or its next park: loads the history (unless the run is new or
 * the claim brought it), invokes the workflow method in the run's async context, and records the
 * outcome with one fenced UPDATE. Every way an execution can end maps to an ExecutionEnd, so that no
 * run is left owned and not executing.
 */
@Injectable()
export class WorkflowExecutor {
  private readonly logger = new Logger('Durable');

  constructor(
    private readonly store: DurableStore,
    private readonly steps: StepStore,
    private readonly registry: WorkflowRegistry,
    private readonly options: DurableOptionsHolder,
    private readonly waits: WaitRunner,
    private readonly compensator: Compensator,
    private readonly checkpoints: CheckpointWriter,
    private readonly clock: DurableClock,
    private readonly events: DurableEvents,
    private readonly observer: ExecutionObserver,
    private readonly runEvents: RunEvents,
  ) {}

  /** Runs claimed for the first time have no history, and a claim reads small ones: reads only the rest. */
  async prepare(run: ClaimedRun, lifetime: AbortSignal): Promise<RunExecution> {
    this.clock.observe(run.db_now);
    let steps = run.steps ?? [];
    // A run set aside is not executed: its history (maybe what keeps failing) is not even read.
    if (!run.steps && run.attempts > 1 && !run.set_aside) {
      // The counter first: never newer than the history read after it (see DurableStore.park).
      run.signal_count = await untilAnswered(() => this.store.signalCount(run.id), { signal: lifetime });
      steps = await untilAnswered(() => this.steps.loadSteps(run.id), { signal: lifetime });
    }
    const { maxHistorySteps, maxHistoryBytes, executorId } = this.options.value;
    const limits = { maxSteps: maxHistorySteps, maxBytes: maxHistoryBytes };
    return new RunExecution(run, executorId, steps, {
      waits: this.waits,
      clock: this.clock,
      parker: this.checkpoints,
      limits,
      runEvents: this.runEvents,
    });
  }

  async execute(execution: RunExecution, lifetime: AbortSignal): Promise<ExecutionEnd> {
    this.events.emit(runClaimedEvent(execution));
    let end: ExecutionEnd = { kind: 'gone' };
    const ended = await this.observer.run(execution, async () => {
      end = await this.executeRun(execution, lifetime);
      return end.kind === 'finished' ? end.ended : undefined;
    });
    for (const event of runOutcomeEvents(execution, ended)) this.events.emit(event);
    return end;
  }

  private async executeRun(execution: RunExecution, lifetime: AbortSignal): Promise<ExecutionEnd> {
    const { run } = execution;
    const workflow = this.registry.get(run.workflow, run.version);
    if (!workflow) {
      // Claims filter on registered versions, so this only happens if the registry changed under us.
      const message = messages.unknownWorkflowAtRecovery(run.id, run.workflow, run.version);
      return { kind: 'release', error: new Error(message) };
    }
    if (run.set_aside) return this.setAside(execution, lifetime);
    if (run.compensating) return this.finishCancelled(execution);
    const deadlineTimer = this.armDeadline(execution);
    let outcome: RunOutcomeRecord;
    let ended: RunEnded;
    try {
      const output = await durableScope.run({ execution }, () =>
        workflow.invoke(decodeJson(run.input) as unknown[]),
      );
      execution.throwIfHalted();
      const encoded = encodeJson(
        output,
        `Output of workflow "${run.workflow}"`,
        this.options.value.maxPayloadBytes,
      );
      outcome = { status: 'succeeded', output: encoded, error: null, failedStep: null };
      ended = { id: run.id, status: 'succeeded', output: decodeJson(JSON.parse(encoded)) };
    } catch (thrown) {
      const stopped = this.stopped(execution);
      if (stopped) return stopped;
      const halted = execution.halted; // a deadline or a replay mismatch: the run fails, uncompensated
      const error = halted ? halted.error : thrown;
      if (!halted && this.registry.hasCompensations) {
        try {
          await this.compensator.compensate(execution);
        } catch (compensationError) {
          return this.stopped(execution) ?? { kind: 'release', error: compensationError as Error };
        }
      }
      const info = toErrorInfo(error);
      outcome = {
        status: 'failed',
        output: null,
        error: JSON.stringify(info),
        failedStep: execution.stepKeyOf(error),
      };
      ended = { id: run.id, status: 'failed', error: info };
    } finally {
      deadlineTimer?.clear();
    }
    return this.finish(execution, outcome, ended, lifetime);
  }

  private async finish(
    execution: RunExecution,
    outcome: RunOutcomeRecord,
    ended: RunEnded,
    lifetime: AbortSignal,
  ): Promise<ExecutionEnd> {
    execution.ending = true;
    // Refused: another executor owns the run (the run.lease-lost event tells).
    if (await this.checkpoints.finish(execution, outcome, lifetime)) return { kind: 'finished', ended };
    return { kind: 'gone' };
  }

  /** An execution stopped by a halt that ends it here (parked, fenced, cancelled, a failed write). */
  private stopped(execution: RunExecution): ExecutionEnd | undefined {
    const halted = execution.halted;
    if (!halted || halted.reason === 'timeout' || halted.reason === 'mismatch') return undefined;
    if (halted.reason === 'failed-write') return { kind: 'release', error: halted.error };
    return { kind: 'gone' };
  }

  /** Claimed too many times without progress: failed with RunSetAsideError, resumable by hand. */
  private async setAside(execution: RunExecution, lifetime: AbortSignal): Promise<ExecutionEnd> {
    const { run } = execution;
    const limit = this.registry.get(run.workflow, run.version)?.maxRecoveryAttempts;
    const message = messages.runSetAsideError(run.id, (run.stalls ?? 1) - 1, limit ?? 0);
    this.events.emit({ type: 'run.set-aside', ...runRef(execution), attempts: run.attempts });
    const info = toErrorInfo(new RunSetAsideError(message));
    delete info.stack;
    const outcome = {
      status: 'failed' as const,
      output: null,
      error: JSON.stringify(info),
      failedStep: null,
    };
    return this.finish(execution, outcome, { id: run.id, status: 'failed', error: info }, lifetime);
  }

  /** A cancelled run with compensable steps: run their undos, then leave it cancelled. */
  private async finishCancelled(execution: RunExecution): Promise<ExecutionEnd> {
    try {
      await this.compensator.compensate(execution);
    } catch (error) {
      return this.stopped(execution) ?? { kind: 'release', error: error as Error };
    }
    const finished = await this.checkpoints.retrying(execution, 'the end of a compensation', () =>
      this.store.finishCompensation(execution.lease),
    );
    if (!finished) this.logger.warn(messages.leaseLost(execution.runId, execution.lease.epoch));
    return { kind: 'gone' };
  }

  /** Past its deadline (on the database's clock) the run stops at once: the step in flight is aborted. */
  private armDeadline(execution: RunExecution): { clear(): void } | undefined {
    const deadline = execution.run.deadline;
    if (!deadline) return undefined;
    const fire = () =>
      execution.halt('timeout', new WorkflowTimeoutError(messages.workflowTimeout(execution.runId)));
    const remaining = new Date(deadline).getTime() - this.clock.now();
    if (remaining <= 0) {
      fire();
      return undefined;
    }
    return setLongTimeout(fire, remaining);
  }
}
