import type { Duration } from '../duration';

/** Options of @Workflow. */
export interface WorkflowOptions {
  /** Registered name; defaults to the method name. */
  name?: string;
  /** Code version recorded on each run; a process claims only runs of versions it registered. Default '1'. */
  version?: string | number;
  /** Deadline of a run from its start; the run fails with WorkflowTimeoutError past it. */
  timeout?: Duration;
}
