import type { ErrorInfo, RunStatus, StepKind, StepStatus } from '../interfaces';

/** Filters of the admin run list; every one is served by an index. */
export interface AdminRunFilter {
  status?: RunStatus[];
  workflow?: string;
  version?: string;
  /** Runs created at or after this time. */
  createdAfter?: Date;
  /** Runs created before this time. */
  createdBefore?: Date;
  /** Runs whose id starts with this text (literally: % and _ match themselves). */
  idPrefix?: string;
  /** Runs whose recorded error (name, code or message) contains this text, case-insensitively. */
  errorText?: string;
  /** Default 50, at most 500. */
  limit?: number;
  /** The `next` cursor of the previous page. */
  after?: string;
}

/** A run in a list: no input, output or stack. */
export interface AdminRunSummary {
  id: string;
  workflow: string;
  version: string;
  status: RunStatus;
  attempts: number;
  parentId: string | null;
  compensating: boolean;
  /** Name, code and message of the recorded error (the message clipped to 500 characters). */
  error: { name: string; code?: string; message: string } | null;
  createdAt: Date;
  updatedAt: Date;
}

/** A page of runs, newest first; pass `next` back as `after`. */
export interface AdminRunPage {
  runs: AdminRunSummary[];
  next?: string;
}

/** Runs per status, each counted up to `cap` (a count equal to the cap means "at least"). */
export interface AdminStatusCounts {
  counts: Record<RunStatus, number>;
  cap: number;
}

/** A recorded step as operators see it, in recording order. */
export interface AdminStep {
  /** Recording order within the run. */
  seq: number;
  key: string;
  name: string;
  kind: StepKind;
  status: StepStatus;
  attempts: number;
  output: unknown;
  error: ErrorInfo | null;
  startedAt: Date;
  finishedAt: Date | null;
  /** A sleep's wake time, or a signal wait's timeout, when the step recorded one. */
  wakeAt: Date | null;
  /** A compensation (`$undo:<key>`). */
  compensation: boolean;
}

/** A signal sent to a run; `consumedBy` is the step key that consumed it (null: pending). */
export interface AdminSignal {
  id: number;
  name: string;
  payload: unknown;
  sentAt: Date;
  consumedBy: string | null;
}

/** A run with everything an operator needs to understand it. */
export interface AdminRunDetail extends AdminRunSummary {
  input: unknown;
  output: unknown;
  /** The full recorded error, with its stack. */
  fullError: ErrorInfo | null;
  failedStep: string | null;
  executor: string | null;
  epoch: number;
  deadline: Date | null;
  /** When a parked run is due (its wake time), or when a pending run became available. */
  availableAt: Date;
  /** What a parked run waits for: signal names, and `$child:<run id>` for child runs (empty otherwise). */
  waitingFor: string[];
  steps: AdminStep[];
  signals: AdminSignal[];
  parent: AdminRunSummary | null;
  /** Child runs, oldest first (at most 200). */
  children: AdminRunSummary[];
}

/** Options of DurableClient.fork. */
export interface ForkOptions {
  /**
   * Key of the step (e.g. 'configureDns#1') from which the fork executes again: the original's steps
   * recorded before it are copied and replay. Omitted: nothing is copied and the whole run executes.
   */
  fromStep?: string;
  /** Id of the new run (default: a random UUID). */
  id?: string;
}
