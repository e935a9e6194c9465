export { AsyncCheckpoints } from './async-checkpoints';
export type { CommitPlan } from './async-checkpoints';
