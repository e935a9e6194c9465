import { ReplayMismatchError } from '../errors';
import type { RunEnded } from '../engine/durable.events';
import { runExecutionOutcome } from '../engine/execution.observer';
import type { RunExecution } from '../engine/run-execution';
import type { ObservedStepAttempt } from '../engine/execution.observer';
import type { ErrorInfo } from '../interfaces';
import type {
  DurableLifecycleEvent,
  RunEventBase,
  StepAttemptFailedEvent,
  StepSucceededEvent,
} from './lifecycle-events';
import { eventError } from './lifecycle-events';

/** The run an execution is about, as events name it. */
export function runRef(execution: RunExecution): RunEventBase {
  const { id, workflow, version } = execution.run;
  return { runId: id, workflow, version };
}

/** This process claimed the run and begins executing it. */
export function runClaimedEvent(execution: RunExecution): DurableLifecycleEvent {
  const { id, workflow, version, attempts } = execution.run;
  const { executorId, epoch } = execution.lease;
  return { type: 'run.claimed', runId: id, workflow, version, executorId, epoch, attempt: attempts };
}

/**
 * The lifecycle events that tell how an execution ended in this process. Written out, without object
 * spread: this is on every run's path, and spreading costs microseconds.
 */
export function runOutcomeEvents(
  execution: RunExecution,
  ended: RunEnded | undefined,
): DurableLifecycleEvent[] {
  const { id: runId, workflow, version } = execution.run;
  const events: DurableLifecycleEvent[] = [];
  const halt = execution.halted;
  if (halt?.reason === 'mismatch' && halt.error instanceof ReplayMismatchError) {
    const { expected, actual } = halt.error;
    events.push({ type: 'run.replay-mismatch', runId, workflow, version, expected, actual });
  }
  switch (runExecutionOutcome(execution, ended)) {
    case 'succeeded':
      events.push({ type: 'run.finished', runId, workflow, version, status: 'succeeded' });
      break;
    case 'failed': {
      const error = ended?.error ? eventError(ended.error) : undefined;
      events.push({ type: 'run.finished', runId, workflow, version, status: 'failed', error });
      break;
    }
    case 'parked':
      events.push({ type: 'run.parked', runId, workflow, version });
      break;
    case 'lease-lost': {
      const { executorId, epoch } = execution.lease;
      events.push({ type: 'run.lease-lost', runId, workflow, version, executorId, epoch });
      break;
    }
  }
  return events;
}

/** The event of a step attempt, written out (no object spread: it is on every step's path). */
export function stepEvent(
  type: 'step.succeeded',
  execution: RunExecution,
  step: ObservedStepAttempt,
  durationMs: number,
): StepSucceededEvent;
export function stepEvent(
  type: 'step.retrying' | 'step.failed',
  execution: RunExecution,
  step: ObservedStepAttempt,
  durationMs: number,
  error: ErrorInfo,
): StepAttemptFailedEvent;
export function stepEvent(
  type: 'step.succeeded' | 'step.retrying' | 'step.failed',
  execution: RunExecution,
  step: ObservedStepAttempt,
  durationMs: number,
  error?: ErrorInfo,
): StepSucceededEvent | StepAttemptFailedEvent {
  const { id, workflow, version } = execution.run;
  const { key, name, kind, attempt } = step;
  if (type === 'step.succeeded') {
    return { type, runId: id, workflow, version, stepKey: key, stepName: name, kind, attempt, durationMs };
  }
  const recorded = eventError(error!);
  return {
    type,
    runId: id,
    workflow,
    version,
    stepKey: key,
    stepName: name,
    kind,
    attempt,
    durationMs,
    error: recorded,
  };
}
