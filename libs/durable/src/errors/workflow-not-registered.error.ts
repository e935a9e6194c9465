import { DurableError } from './durable.error';

/** No @Workflow with that name (and version) is registered in this process. */
export class WorkflowNotRegisteredError extends DurableError {
  readonly code = 'DURABLE_WORKFLOW_NOT_REGISTERED';
}
