export { resolveFlowStart } from './start-options';
export type { FlowStart } from './start-options';
export { StartStore } from './start.store';
export type { StartedRun } from './start.store';
