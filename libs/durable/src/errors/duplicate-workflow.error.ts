import { DurableError } from './durable.error';

/** Two @Workflow methods share one name and version; thrown at startup. */
export class DuplicateWorkflowError extends DurableError {
  readonly code = 'DURABLE_DUPLICATE_WORKFLOW';
}
