import type { Duration } from '../duration';

/** Options of @Workflow. */
export interface WorkflowOptions {
  /** Registered name; defaults to the method name. */
  name?: string;
  /** Code version recorded on each run; a process claims only runs of versions it registered. Default '1'. */
  version?: string | number;
  /** Deadline of a run from its start; the run fails with WorkflowTimeoutError past it. */
  timeout?: Duration;
  /**
   * Claims of a run without progress (its process died, its lease was lost) after which it is set
   * aside as failed (RunSetAsideError) instead of being retried forever. Default: the module's
   * `maxRecoveryAttempts` (10).
   */
  maxRecoveryAttempts?: number;
  /**
   * The queue (from DurableModule's `queues` option) runs of this workflow start on when start() names
   * none; checked at boot. Child runs started inside a workflow are not queued.
   */
  queue?: string;
}
