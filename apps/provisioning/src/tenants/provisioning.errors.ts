/** No capacity left for the plan in the region: the tenant fails at once (not retried). */
export class QuotaExceededError extends Error {
  constructor(plan: string, region: string, capacity: number) {
    super(`No ${plan} capacity left in ${region} (capacity ${capacity}).`);
    this.name = 'QuotaExceededError';
  }
}

/** An operator rejected the enterprise tenant. */
export class ApprovalRejectedError extends Error {
  constructor(by: string, reason?: string) {
    super(`Rejected by ${by}${reason ? `: ${reason}` : ''}.`);
    this.name = 'ApprovalRejectedError';
  }
}

/** Nobody approved the enterprise tenant in time: treated as a rejection. */
export class ApprovalTimeoutError extends Error {
  constructor(timeout: string | number) {
    super(`Not approved within ${typeof timeout === 'number' ? `${timeout} ms` : timeout}.`);
    this.name = 'ApprovalTimeoutError';
  }
}

/** The tenant row is not in a state the step expects (e.g. cancelled meanwhile). */
export class TenantStateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TenantStateError';
  }
}
