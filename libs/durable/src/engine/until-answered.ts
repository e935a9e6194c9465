import { performance } from 'node:perf_hooks';
import { delay } from './retry-delay';
import { isTransient } from './transient-errors';

const BACKOFF_MS = [50, 100, 200, 400, 800, 1_600, 3_200, 5_000];

export interface UntilAnsweredOptions {
  /** Stops retrying (rejects with its reason) once aborted: the execution halted, the process stops. */
  signal?: AbortSignal;
  /** Gives up after about this long, throwing the last error (default: never). */
  giveUpAfterMs?: number;
  /** Called before each wait, with the number of failed tries so far (for a log line, say). */
  onRetry?: (failures: number, error: unknown) => void;
}

/**
 * Runs an idempotent database call until the database answers: transient errors (a lost connection,
 * a server restarting, a conflict) are retried with backoff up to 5 s between tries, for as long as it
 * takes; any other error is thrown at once. The call must be safe to repeat after an unknown outcome.
 */
export async function untilAnswered<T>(
  call: () => Promise<T>,
  options: UntilAnsweredOptions = {},
): Promise<T> {
  const giveUpAt = performance.now() + (options.giveUpAfterMs ?? Infinity);
  for (let failures = 1; ; failures++) {
    try {
      return await call();
    } catch (error) {
      if (!isTransient(error)) throw error;
      if (options.signal?.aborted) throw options.signal.reason;
      const wait = BACKOFF_MS[Math.min(failures, BACKOFF_MS.length) - 1];
      if (performance.now() + wait > giveUpAt) throw error;
      options.onRetry?.(failures, error);
      await delay(wait, options.signal);
    }
  }
}
