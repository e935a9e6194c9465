/** What Durable.context() returns inside a workflow. */
export interface DurableContextInfo {
  runId: string;
  workflow: string;
  version: string;
  /** Present inside a step. */
  step?: StepContextInfo;
}

/** The current step, inside a step. */
export interface StepContextInfo {
  name: string;
  /** 'name#occurrence'. */
  key: string;
  /** 1 for the first attempt. */
  attempt: number;
  /** Fires on the step's timeout, on cancellation and when the run's lease is lost. */
  signal: AbortSignal;
  /** `${runId}:${key}`: stable across attempts and restarts; pass it to external APIs. */
  idempotencyKey: string;
}
