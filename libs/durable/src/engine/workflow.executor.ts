import { Injectable, Logger } from '@nestjs/common';
import { durableScope } from '../context';
import { messages } from '../durable.messages';
import { DurableOptionsHolder } from '../durable.options';
import { WorkflowTimeoutError } from '../errors';
import { DurableStore, RunOutcomeRecord } from '../persistence/durable.store';
import { decodeJson, encodeJson } from '../persistence/json-codec';
import type { ClaimedRun } from '../persistence/row-types';
import { WorkflowRegistry } from '../workflow.registry';
import { RunEvents } from '../events/run-events';
import { runClaimedEvent, runOutcomeEvents } from '../events/run-outcome-events';
import { DurableEvents, RunEnded } from './durable.events';
import { Compensator } from './compensator';
import { ExecutionObserver } from './execution.observer';
import { toErrorInfo } from './error-info';
import { setLongTimeout } from './retry-delay';
import { RunExecution } from './run-execution';
import { WaitRunner } from './wait.runner';

/**
 * Executes one claimed run to its end or its next park: loads the history (unless the run is new),
 * invokes the workflow method in the run's async context, and records the outcome with one fenced UPDATE.
 */
@Injectable()
export class WorkflowExecutor {
  private readonly logger = new Logger('Durable');

  constructor(
    private readonly store: DurableStore,
    private readonly registry: WorkflowRegistry,
    private readonly options: DurableOptionsHolder,
    private readonly waits: WaitRunner,
    private readonly compensator: Compensator,
    private readonly events: DurableEvents,
    private readonly observer: ExecutionObserver,
    private readonly runEvents: RunEvents,
  ) {}

  /** Runs claimed for the first time have no history, and a claim reads the others': no read here. */
  async prepare(run: ClaimedRun): Promise<RunExecution> {
    const steps = run.steps ?? (run.attempts > 1 ? await this.store.loadSteps(run.id) : []);
    return new RunExecution(run, this.options.value.executorId, steps, this.waits, this.runEvents);
  }

  /** Returns how the run ended, when it ended here (the worker announces it once its slot is free). */
  async execute(execution: RunExecution): Promise<RunEnded | undefined> {
    this.events.emit(runClaimedEvent(execution));
    const ended = await this.observer.run(execution, () => this.executeRun(execution));
    for (const event of runOutcomeEvents(execution, ended)) this.events.emit(event);
    return ended;
  }

  private async executeRun(execution: RunExecution): Promise<RunEnded | undefined> {
    const { run } = execution;
    const workflow = this.registry.get(run.workflow, run.version);
    if (!workflow) {
      // Claims filter on registered versions, so this only happens if the registry changed under us.
      this.logger.error(messages.unknownWorkflowAtRecovery(run.id, run.workflow, run.version));
      await this.store.releaseRun(execution.lease);
      return undefined;
    }
    if (run.compensating) {
      await this.finishCancelled(execution);
      return undefined;
    }
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
      const halted = execution.halted;
      if (halted && halted.reason !== 'timeout' && halted.reason !== 'mismatch') return undefined; // parked, fenced, cancelled
      const error = halted ? halted.error : thrown;
      if (!halted && this.registry.hasCompensations) {
        try {
          await this.compensator.compensate(execution);
        } catch {
          return undefined; // the execution was halted (lease lost, cancelled, parked): its new owner compensates
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
    execution.ending = true;
    return (await this.store.finishRun(execution.lease, outcome)) ? ended : undefined; // refused: lease lost
  }

  /** A cancelled run with compensable steps: run their undos, then leave it cancelled. */
  private async finishCancelled(execution: RunExecution): Promise<void> {
    try {
      await this.compensator.compensate(execution);
    } catch {
      return; // halted: whoever owns the run next resumes the compensation
    }
    if (!(await this.store.finishCompensation(execution.lease))) {
      this.logger.warn(messages.leaseLost(execution.runId, execution.lease.epoch));
    }
  }

  /** Past its deadline the run stops at once: the step in flight is aborted and the run fails. */
  private armDeadline(execution: RunExecution): { clear(): void } | undefined {
    const deadline = execution.run.deadline;
    if (!deadline) return undefined;
    const fire = () =>
      execution.halt('timeout', new WorkflowTimeoutError(messages.workflowTimeout(execution.runId)));
    const remaining = new Date(deadline).getTime() - Date.now();
    if (remaining <= 0) {
      fire();
      return undefined;
    }
    return setLongTimeout(fire, remaining);
  }
}
