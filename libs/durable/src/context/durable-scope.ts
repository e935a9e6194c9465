import { AsyncLocalStorage } from 'node:async_hooks';
import type { EntityManager } from 'typeorm';
import type { RunExecution } from '../engine/run-execution';

/** The step being executed, as seen from inside its body. */
export interface StepScope {
  name: string;
  key: string;
  attempt: number;
  signal: AbortSignal;
  idempotencyKey: string;
  /** The step's transaction, for transactional steps. */
  manager?: EntityManager;
}

/** What the async context holds while a workflow (and possibly one of its steps) runs. */
export interface DurableScope {
  execution: RunExecution;
  step?: StepScope;
}

/** One AsyncLocalStorage for the whole library: the current run and step. */
export const durableScope = new AsyncLocalStorage<DurableScope>();
