import type { ErrorInfo, StepKind } from '../interfaces';

/** The run an event is about. */
export interface RunEventBase {
  runId: string;
  workflow: string;
  version: string;
}

/** A new run was inserted by `start()` in this process (in the caller's transaction, if any). */
export interface RunStartedEvent extends RunEventBase {
  type: 'run.started';
  /** The parent run, for a child run. */
  parentId?: string;
}

/** This process claimed the run and begins executing it (also a run started here and executed at once). */
export interface RunClaimedEvent extends RunEventBase {
  type: 'run.claimed';
  executorId: string;
  /** Times the run has been claimed, this claim included. */
  attempt: number;
  epoch: number;
}

/**
 * The run ended, emitted by the process whose write ended it: succeeded or failed by its executor,
 * cancelled by the process that called `cancel()`.
 */
export interface RunFinishedEvent extends RunEventBase {
  type: 'run.finished';
  status: 'succeeded' | 'failed' | 'cancelled';
  /** For a failed or cancelled run: the recorded error, without its stack. */
  error?: Omit<ErrorInfo, 'stack'>;
}

/** The execution stopped and the run waits in the database: a durable sleep, a signal wait, a long retry backoff. */
export interface RunParkedEvent extends RunEventBase {
  type: 'run.parked';
}

/** Another executor owns the run now (this process froze past its lease): this process abandoned it. */
export interface RunLeaseLostEvent extends RunEventBase {
  type: 'run.lease-lost';
  executorId: string;
  epoch: number;
}

/** The workflow's code no longer matches the run's history; the run failed, its history is kept. */
export interface RunReplayMismatchEvent extends RunEventBase {
  type: 'run.replay-mismatch';
  /** Recorded step keys this execution had not replayed when it called `actual`. */
  expected: string[];
  actual: string;
}

/** A run claimed too many times without progress was set aside (failed, resumable). */
export interface RunSetAsideEvent extends RunEventBase {
  type: 'run.set-aside';
  /** Times it had been claimed. */
  attempts: number;
}

/** A due run needs a (workflow, version) that this process does not serve (reported once per run). */
export interface RunUnservedEvent extends RunEventBase {
  type: 'run.unserved';
}

/** Runs of dead executors (or of this executor's previous life) were returned to the queue. */
export interface RunsRecoveredEvent {
  type: 'runs.recovered';
  count: number;
  /** 'startup': the sweep at bootstrap; 'sweep': a periodic one. */
  trigger: 'startup' | 'sweep';
}

/** A step attempt succeeded and its checkpoint was written. */
export interface StepSucceededEvent extends RunEventBase {
  type: 'step.succeeded';
  stepKey: string;
  stepName: string;
  kind: StepKind;
  attempt: number;
  /** Duration of this attempt (body and checkpoint), in milliseconds. */
  durationMs: number;
}

/** A step attempt failed; `step.retrying` when another attempt follows, `step.failed` when none does. */
export interface StepAttemptFailedEvent extends RunEventBase {
  type: 'step.retrying' | 'step.failed';
  stepKey: string;
  stepName: string;
  kind: StepKind;
  attempt: number;
  durationMs: number;
  /** The attempt's error, without its stack. */
  error: Omit<ErrorInfo, 'stack'>;
}

/** `Durable.setEvent(key, value)` was recorded for the run (read it with `client.getEvent`). */
export interface RunEventSetEvent extends RunEventBase {
  type: 'run.event';
  key: string;
  /** Position of this event in the run's event stream (1, 2, ...). */
  seq: number;
}

/** This process's LISTEN connection was lost and is connected again. */
export interface ListenerReconnectedEvent {
  type: 'listener.reconnected';
}

/**
 * Everything the library tells about runs in this process. Events carry ids, names and errors, never
 * inputs, outputs or payloads. Subscribe with `DurableEvents.on(type, listener)`.
 */
export type DurableLifecycleEvent =
  | RunStartedEvent
  | RunClaimedEvent
  | RunFinishedEvent
  | RunParkedEvent
  | RunLeaseLostEvent
  | RunReplayMismatchEvent
  | RunSetAsideEvent
  | RunUnservedEvent
  | RunsRecoveredEvent
  | StepSucceededEvent
  | StepAttemptFailedEvent
  | RunEventSetEvent
  | ListenerReconnectedEvent;

/** The `type` of a lifecycle event. */
export type DurableLifecycleEventType = DurableLifecycleEvent['type'];

/** The event of a given type. */
export type DurableLifecycleEventOf<T extends DurableLifecycleEventType> = Extract<
  DurableLifecycleEvent,
  { type: T }
>;

/** An error as events carry it: name, message and code, no stack. */
export function eventError(error: ErrorInfo): Omit<ErrorInfo, 'stack'> {
  return error.code === undefined
    ? { name: error.name, message: error.message }
    : { name: error.name, message: error.message, code: error.code };
}
