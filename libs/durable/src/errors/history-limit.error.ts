import { DurableError } from './durable.error';

/** A run's history would cross maxHistorySteps or maxHistoryBytes: the step that crosses it fails. */
export class HistoryLimitError extends DurableError {
  readonly code = 'DURABLE_HISTORY_LIMIT';
}
