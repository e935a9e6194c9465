import { DurableError } from './durable.error';

/** A Durable.* helper was called outside the scope it needs (a workflow, or a transactional step). */
export class OutsideWorkflowError extends DurableError {
  readonly code = 'DURABLE_OUTSIDE_WORKFLOW';
}
