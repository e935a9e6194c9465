/** What @Workflow records, normalized and validated. */
export interface WorkflowMetadata {
  name: string;
  version: string;
  timeoutMs?: number;
  /** Overrides the module's maxRecoveryAttempts for this workflow. */
  maxRecoveryAttempts?: number;
  /** Default queue of start(). */
  queue?: string;
}

/** What @Step records, normalized and validated. */
export interface StepMetadata {
  name: string;
  transactional: boolean;
  isolation?: 'READ COMMITTED' | 'REPEATABLE READ' | 'SERIALIZABLE';
  timeoutMs?: number;
  retry: ResolvedRetryPolicy;
  /** Method of the same provider that undoes this step. */
  compensate?: string;
}

export interface ResolvedRetryPolicy {
  maxAttempts: number;
  initialDelayMs: number;
  backoffFactor: number;
  maxDelayMs: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  nonRetryable: (abstract new (...args: any[]) => Error)[];
}
