import { DurableError } from './durable.error';

/** The run passed its workflow timeout and was failed. */
export class WorkflowTimeoutError extends DurableError {
  readonly code = 'DURABLE_WORKFLOW_TIMEOUT';
}
