import type { ResolvedRetryPolicy } from '../decorators';

/** Exponential backoff with "equal jitter": half the delay fixed, half random, capped at maxDelay. */
export function retryDelay(policy: ResolvedRetryPolicy, failedAttempt: number): number {
  const exponential = policy.initialDelayMs * policy.backoffFactor ** (failedAttempt - 1);
  const capped = Math.min(policy.maxDelayMs, exponential);
  return Math.round(capped / 2 + (Math.random() * capped) / 2);
}

/** Node timers overflow past this many ms (about 24.8 days) and fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A setTimeout that also waits correctly for longer than a 32-bit timer holds. */
export function setLongTimeout(fn: () => void, ms: number): { clear(): void } {
  let timer: NodeJS.Timeout;
  const arm = (remaining: number) => {
    timer = setTimeout(
      () => (remaining > MAX_TIMER_MS ? arm(remaining - MAX_TIMER_MS) : fn()),
      Math.min(remaining, MAX_TIMER_MS),
    );
  };
  arm(ms);
  return { clear: () => clearTimeout(timer) };
}

/** Resolves after `ms`, or rejects with the signal's reason once it aborts. */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      timer.clear();
      reject(signal?.reason);
    };
    const timer = setLongTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
