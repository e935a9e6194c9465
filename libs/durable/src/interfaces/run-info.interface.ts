/** Every status of a run, in lifecycle order. */
export const RUN_STATUSES = [
  'pending',
  'running',
  'sleeping',
  'waiting',
  'succeeded',
  'failed',
  'cancelled',
] as const;

/** Status of a run. */
export type RunStatus = (typeof RUN_STATUSES)[number];

/** A run in one of these statuses has ended (until it is resumed). */
export function isFinished(status: RunStatus): boolean {
  return status === 'succeeded' || status === 'failed' || status === 'cancelled';
}

/** Kind of a recorded step. */
export type StepKind = 'step' | 'sleep' | 'signal' | 'child';

/** Status of a recorded step. */
export type StepStatus = 'succeeded' | 'failed' | 'retrying' | 'waiting';

/** An error as recorded in the database. */
export interface ErrorInfo {
  name: string;
  message: string;
  stack?: string;
  code?: string;
}

/** One recorded step of a run. A step still executing has no row. */
export interface StepInfo {
  /** 'name#occurrence', e.g. 'reserveQuota#1'. */
  key: string;
  name: string;
  kind: StepKind;
  status: StepStatus;
  output: unknown;
  error: ErrorInfo | null;
  attempts: number;
  startedAt: Date;
  finishedAt: Date | null;
}

/** A run as stored. */
export interface RunInfo<R = unknown> {
  id: string;
  workflow: string;
  version: string;
  status: RunStatus;
  /** The arguments array the workflow was started with. */
  input: unknown[];
  output: R | undefined;
  error: ErrorInfo | null;
  /** Times the run was claimed by an executor. */
  attempts: number;
  /** A cancelled run whose compensations have not all run yet. */
  compensating: boolean;
  createdAt: Date;
  updatedAt: Date;
  steps: StepInfo[];
}

/** Filter and page of DurableClient.list. */
export interface ListRunsOptions {
  status?: RunStatus | RunStatus[];
  workflow?: string;
  createdAfter?: Date;
  createdBefore?: Date;
  /** Default 100, at most 1000. */
  limit?: number;
  /** The `next` cursor of the previous page. */
  after?: string;
}

/** A page of runs (without their steps), newest first. */
export interface RunPage {
  runs: Omit<RunInfo, 'steps'>[];
  next?: string;
}
