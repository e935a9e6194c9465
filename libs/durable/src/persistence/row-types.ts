import type { ErrorInfo, RunStatus, StepKind, StepStatus } from '../interfaces';

/** A runs row as pg returns it. */
export interface RunRow {
  id: string;
  workflow: string;
  version: string;
  status: RunStatus;
  input: unknown;
  output: unknown;
  error: ErrorInfo | null;
  failed_step: string | null;
  attempts: number;
  epoch: number;
  executor: string | null;
  deadline: Date | null;
  parent_id: string | null;
  compensating: boolean;
  created_at: Date;
  updated_at: Date;
}

/** A steps row as pg returns it. */
export interface StepRow {
  key: string;
  name: string;
  kind: StepKind;
  status: StepStatus;
  output: unknown;
  error: ErrorInfo | null;
  attempts: number;
  /** Attempts recorded before the step was resumed; the retry policy counts from there. */
  attempts_base?: number;
  started_at: Date;
  finished_at: Date | null;
  /** Arguments of a step that has a compensation (null otherwise). */
  undo_args?: unknown;
  /** Recording order within the run (bigint, as text or number). */
  seq?: string | number;
}

/** A run this executor now owns. */
export interface ClaimedRun {
  id: string;
  workflow: string;
  version: string;
  input: unknown;
  epoch: number;
  attempts: number;
  deadline: Date | null;
  /** A cancelled run whose compensations are to run. */
  compensating?: boolean;
  /** Trace context stored by start(), continued by every execution (null without tracing). */
  trace_context?: string | null;
  /** Claims since the run last made progress, this one included. */
  stalls?: number;
  /** Claimed past its recovery limit: to be set aside, not executed. */
  set_aside?: boolean;
  /** The run's signal counter as of its history's snapshot (see DurableStore.park). */
  signal_count?: number;
  /** The database's clock when it was claimed, in ms since the epoch. */
  db_now?: number;
  /** Its history, when the claim could read it (see DurableStore.claimRuns). */
  steps?: StepRow[];
  /** The queue it holds a slot of (null: not queued). */
  queue?: string | null;
}

/** What a step checkpoint writes. Values are JSON text already encoded. */
export interface StepRecord {
  key: string;
  name: string;
  kind: StepKind;
  status: StepStatus;
  output: string | null;
  error: string | null;
  attempts: number;
  /** Time since the step started (its first attempt in this execution), measured on a monotonic clock. */
  elapsedMs: number;
  /** JSON text of the step's arguments, kept for its compensation. */
  undoArgs?: string | null;
}

/** The lease a checkpoint write must still hold. */
export interface Lease {
  runId: string;
  executorId: string;
  epoch: number;
}

/** Who holds a run now, as far as a refused fenced write needs to know. */
export interface RunHolder {
  status: RunStatus;
  executor: string | null;
  epoch: number;
  compensating: boolean;
  error: ErrorInfo | null;
}
