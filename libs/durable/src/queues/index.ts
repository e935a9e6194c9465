export { resolveFlowStart } from './start-options';
export type { FlowStart, QueuePlacement } from './start-options';
export { StartStore } from './start.store';
export type { StartedRun } from './start.store';
export { QueueClaim } from './queue-claim';
export { resolveQueues } from './queue.options';
export type { QueueOptions, ResolvedQueue } from './queue.options';
