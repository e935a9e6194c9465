export { RetentionService, type PurgeResult } from './retention.service';
export { RetentionStore, type PurgeCutoff } from './retention.store';
export {
  resolveRetention,
  FINISHED_STATUSES,
  DEFAULT_PURGE_BATCH,
  type FinishedStatus,
  type RetentionOptions,
  type ResolvedRetention,
} from './retention.options';
