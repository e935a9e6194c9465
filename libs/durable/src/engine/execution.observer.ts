import type { StepKind } from '../interfaces';
import type { RunEnded } from './durable.events';
import type { RunExecution } from './run-execution';

/** One attempt of a step, as the observer sees it. */
export interface ObservedStepAttempt {
  key: string;
  name: string;
  kind: StepKind;
  attempt: number;
}

/** How one execution of a run ended in this process. */
export type RunExecutionOutcome =
  'succeeded' | 'failed' | 'parked' | 'cancelled' | 'lease-lost' | 'released' | 'compensated';

/**
 * The engine's hook for tracing: it calls `run` around each execution of a run (claim to finish or
 * park) and `stepAttempt` around each attempt of a step, so that work inside (the user's spans, the
 * database driver's) runs in their context. `startContext` is what `start()` stores with a new run
 * for its executions to continue, in any process. This class is the no-op; telemetry/ implements it.
 */
export class ExecutionObserver {
  startContext(): string | undefined {
    return undefined;
  }

  run(_execution: RunExecution, body: () => Promise<RunEnded | undefined>): Promise<RunEnded | undefined> {
    return body();
  }

  stepAttempt<T>(_execution: RunExecution, _step: ObservedStepAttempt, body: () => Promise<T>): Promise<T> {
    return body();
  }
}

/** What ended an execution, from its result and its halt reason. */
export function runExecutionOutcome(
  execution: RunExecution,
  ended: RunEnded | undefined,
): RunExecutionOutcome {
  if (ended) return ended.status === 'cancelled' ? 'cancelled' : ended.status;
  const halted = execution.halted;
  if (halted?.reason === 'parked') return 'parked';
  if (halted?.reason === 'cancelled') return 'cancelled';
  if (halted?.reason === 'lease-lost') return 'lease-lost';
  if (halted?.reason === 'shutdown') return 'released';
  // Its outcome write was refused: another executor owns the run (or it was cancelled meanwhile).
  if (execution.ending) return 'lease-lost';
  return execution.run.compensating ? 'compensated' : 'released';
}
