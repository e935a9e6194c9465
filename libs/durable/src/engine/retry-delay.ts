import type { ResolvedRetryPolicy } from '../decorators';

/** Exponential backoff with "equal jitter": half the delay fixed, half random, capped at maxDelay. */
export function retryDelay(policy: ResolvedRetryPolicy, failedAttempt: number): number {
  const exponential = policy.initialDelayMs * policy.backoffFactor ** (failedAttempt - 1);
  const capped = Math.min(policy.maxDelayMs, exponential);
  return Math.round(capped / 2 + (Math.random() * capped) / 2);
}

/** Resolves after `ms`, or rejects with the signal's reason once it aborts. */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
