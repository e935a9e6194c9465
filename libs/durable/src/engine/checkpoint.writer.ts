import { Injectable, Logger } from '@nestjs/common';
import { messages } from '../durable.messages';
import { LeaseLostError, RunCancelledError } from '../errors';
import { isFinished } from '../interfaces';
import { DoneNotifier } from '../persistence/done-notifier';
import { DurableStore, ParkOutcome, ParkRequest, RunOutcomeRecord } from '../persistence/durable.store';
import type { StepRecord, StepRow } from '../persistence/row-types';
import { StepStore } from '../persistence/step.store';
import { RunExecution } from './run-execution';
import { RunParked } from './run-parked';
import { untilAnswered } from './until-answered';
import type { Parker } from './wait-set';

/**
 * The fenced writes of an execution (checkpoints, parks, the finish), each retried until the database
 * answers, and each resolved by reading what the database holds when it was refused: a write whose
 * reply was lost may have landed (a step already succeeded, a park or a finish already done), or the
 * run may be cancelled or owned by another executor now, which halts this execution.
 */
@Injectable()
export class CheckpointWriter implements Parker {
  private readonly logger = new Logger('Durable');

  constructor(
    private readonly store: DurableStore,
    private readonly steps: StepStore,
    private readonly done: DoneNotifier,
  ) {}

  /**
   * Records a step outcome. Returns undefined when written, or the step's recorded row when it had
   * already succeeded (a write of unknown outcome that landed): that outcome is the step's.
   */
  async write(execution: RunExecution, step: StepRecord): Promise<StepRow | undefined> {
    const progress = execution.progressPending;
    const stored = await this.retrying(execution, 'the checkpoint', () =>
      this.steps.recordStep(execution.lease, step, undefined, progress),
    );
    if (stored) {
      if (progress) execution.progressPending = false;
      return undefined;
    }
    const succeeded = await this.succeededStep(execution, step.key);
    if (succeeded) return succeeded;
    throw await this.refused(execution);
  }

  /**
   * The step's row if it succeeded while the run is still ours: how an unknown outcome is resolved.
   * (A step its next owner recorded is not ours: the refusal then halts this execution.)
   */
  async succeededStep(execution: RunExecution, key: string): Promise<StepRow | undefined> {
    const { owned, step } = await this.retrying(execution, 'a step read', () =>
      this.steps.readStep(execution.lease, key),
    );
    return owned && step?.status === 'succeeded' ? step : undefined;
  }

  /** Parks the run (see DurableStore.park). Parked: halts the execution and throws RunParked. */
  async park(execution: RunExecution, request: ParkRequest): Promise<ParkOutcome> {
    const outcome = await this.retrying(execution, 'the park', () =>
      this.store.park(execution.lease, request),
    );
    if (outcome.parked) throw this.parked(execution);
    if (!outcome.owned) throw await this.refused(execution);
    return outcome;
  }

  /**
   * Ends the run, then notifies listeners elsewhere (after the commit: see DoneNotifier). Retried until
   * the database answers, whatever happened to the execution (a deadline halts it, and the run must
   * still fail). Returns false when the run is no longer ours.
   */
  async finish(execution: RunExecution, outcome: RunOutcomeRecord, lifetime: AbortSignal): Promise<boolean> {
    const finished = await this.finishOnce(execution, outcome, lifetime);
    if (finished) this.done.finished(execution.runId);
    return finished;
  }

  private async finishOnce(execution: RunExecution, outcome: RunOutcomeRecord, lifetime: AbortSignal) {
    const write = () => this.store.finishRun(execution.lease, outcome);
    if (await untilAnswered(write, { signal: lifetime, onRetry: this.warn(execution, 'the finish') }))
      return true;
    // A finish whose reply was lost: the run ended with our epoch and this outcome.
    const holder = await untilAnswered(() => this.store.holder(execution.runId), { signal: lifetime });
    return holder?.epoch === execution.lease.epoch && holder.status === outcome.status && !holder.executor;
  }

  /**
   * Why a fenced write was refused, as an error that halts the execution: the run was cancelled, or
   * another executor owns it now; or our own park landed though its reply was lost (RunParked).
   */
  async refused(execution: RunExecution): Promise<Error> {
    const holder = await untilAnswered(() => this.store.holder(execution.runId), {
      signal: execution.signal,
    }).catch(() => undefined);
    if (execution.halted) return execution.halted.error;
    if (holder?.status === 'cancelled' && !execution.run.compensating) {
      const reason = holder.error?.message;
      const error = new RunCancelledError(
        messages.runCancelled(execution.runId, reason),
        execution.runId,
        reason,
      );
      execution.halt('cancelled', error);
      return error;
    }
    const ours = holder?.epoch === execution.lease.epoch;
    if (ours && holder.executor === null && (holder.status === 'sleeping' || holder.status === 'waiting'))
      return this.parked(execution);
    if (ours && holder.executor === execution.lease.executorId && !isFinished(holder.status)) {
      // Still ours, yet refused: nothing explains it; stop and let the run be released and retried.
      const error = new Error(
        `Run "${execution.runId}": a checkpoint was refused while the run is still owned.`,
      );
      execution.halt('failed-write', error);
      return error;
    }
    const error = new LeaseLostError(messages.leaseLost(execution.runId, execution.lease.epoch));
    execution.halt('lease-lost', error); // logged from the run.lease-lost event
    return error;
  }

  /** Another process ended the run (a cancel, usually): if it was cancelled, stop the step in flight. */
  async haltIfCancelled(execution: RunExecution): Promise<void> {
    // An execution claimed to run a cancelled run's compensations must not stop for that same cancel.
    if (execution.halted || execution.run.compensating) return;
    const run = await this.store.holder(execution.runId);
    if (run?.status !== 'cancelled') return;
    const reason = run.error?.message;
    execution.halt(
      'cancelled',
      new RunCancelledError(messages.runCancelled(execution.runId, reason), execution.runId, reason),
    );
  }

  private parked(execution: RunExecution): RunParked {
    const signal = new RunParked(execution.runId);
    execution.halt('parked', signal);
    return signal;
  }

  /** A write of this execution, retried until the database answers or the execution halts. */
  retrying<T>(execution: RunExecution, what: string, call: () => Promise<T>): Promise<T> {
    return untilAnswered(call, { signal: execution.signal, onRetry: this.warn(execution, what) });
  }

  private warn(execution: RunExecution, what: string) {
    return (failures: number, error: unknown) => {
      if (failures === 1 || failures % 20 === 0) {
        this.logger.warn(messages.databaseUnavailable(what, execution.runId, failures, error));
      }
    };
  }
}
