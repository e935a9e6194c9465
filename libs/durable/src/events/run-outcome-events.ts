import { ReplayMismatchError } from '../errors';
import type { RunEnded } from '../engine/durable.events';
import { runExecutionOutcome } from '../engine/execution.observer';
import type { RunExecution } from '../engine/run-execution';
import type { DurableLifecycleEvent, RunEventBase } from './lifecycle-events';
import { eventError } from './lifecycle-events';

/** The run an execution is about, as events name it. */
export function runRef(execution: RunExecution): RunEventBase {
  const { id, workflow, version } = execution.run;
  return { runId: id, workflow, version };
}

/** The lifecycle events that tell how an execution ended in this process. */
export function runOutcomeEvents(
  execution: RunExecution,
  ended: RunEnded | undefined,
): DurableLifecycleEvent[] {
  const run = runRef(execution);
  const events: DurableLifecycleEvent[] = [];
  const halt = execution.halted;
  if (halt?.reason === 'mismatch' && halt.error instanceof ReplayMismatchError) {
    events.push({
      type: 'run.replay-mismatch',
      ...run,
      expected: halt.error.expected,
      actual: halt.error.actual,
    });
  }
  switch (runExecutionOutcome(execution, ended)) {
    case 'succeeded':
      events.push({ type: 'run.finished', ...run, status: 'succeeded' });
      break;
    case 'failed':
      events.push({
        type: 'run.finished',
        ...run,
        status: 'failed',
        ...(ended?.error ? { error: eventError(ended.error) } : {}),
      });
      break;
    case 'parked':
      events.push({ type: 'run.parked', ...run });
      break;
    case 'lease-lost':
      events.push({
        type: 'run.lease-lost',
        ...run,
        executorId: execution.lease.executorId,
        epoch: execution.lease.epoch,
      });
      break;
  }
  return events;
}
