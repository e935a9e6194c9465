import type { Duration } from '../duration';
import { toMilliseconds } from '../duration';
import { messages } from '../durable.messages';
import { InvalidOptionsError } from '../errors';

/**
 * What the periodic retention pass deletes: finished runs (with their steps and signals) once they
 * finished longer ago than the age given for their status, and executor rows whose heartbeat stopped.
 * A status without an age is kept forever.
 * @example DurableModule.forRoot({ retention: { succeeded: '7d', failed: '30d', cancelled: '7d' } })
 */
export interface RetentionOptions {
  succeeded?: Duration;
  failed?: Duration;
  cancelled?: Duration;
  /** Executor rows (one per process life with the default executor id) silent this long. Default '1d'. */
  executors?: Duration;
  /** Time between passes; the first runs shortly after startup. Default '1h'. */
  interval?: Duration;
  /** Runs deleted per statement (each batch is its own short transaction). Default 1000. */
  batchSize?: number;
}

/** Retention with durations in ms; `ages` holds only the statuses that are purged. */
export interface ResolvedRetention {
  ages: Partial<Record<FinishedStatus, number>>;
  executorsMs: number;
  intervalMs: number;
  batchSize: number;
}

export type FinishedStatus = 'succeeded' | 'failed' | 'cancelled';
export const FINISHED_STATUSES: readonly FinishedStatus[] = ['succeeded', 'failed', 'cancelled'];
export const DEFAULT_PURGE_BATCH = 1_000;
const KNOWN = new Set(['succeeded', 'failed', 'cancelled', 'executors', 'interval', 'batchSize']);

/** Validates the `retention` module option; every problem names the option. */
export function resolveRetention(options: RetentionOptions | undefined): ResolvedRetention | undefined {
  if (options === undefined) return undefined;
  if (options === null || typeof options !== 'object')
    throw new InvalidOptionsError(messages.invalidOption('retention', options, 'an object'));
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key))
      throw new InvalidOptionsError(
        messages.invalidOption(
          `retention.${key}`,
          (options as Record<string, unknown>)[key],
          'no such option',
        ),
      );
  }
  const ms = (key: keyof RetentionOptions, value: Duration | undefined, min: number) => {
    if (value === undefined) return undefined;
    let parsed: number | undefined;
    try {
      parsed = toMilliseconds(value);
    } catch {
      parsed = undefined;
    }
    if (parsed === undefined || parsed < min)
      throw new InvalidOptionsError(
        messages.invalidOption(`retention.${key}`, value, `a duration of at least ${min} ms ('7d', '12h')`),
      );
    return parsed;
  };
  const ages: ResolvedRetention['ages'] = {};
  for (const status of FINISHED_STATUSES) {
    const age = ms(status, options[status], 0);
    if (age !== undefined) ages[status] = age;
  }
  const batchSize = options.batchSize ?? DEFAULT_PURGE_BATCH;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 100_000)
    throw new InvalidOptionsError(
      messages.invalidOption('retention.batchSize', batchSize, 'an integer from 1 to 100000'),
    );
  return {
    ages,
    executorsMs: ms('executors', options.executors, 60_000) ?? 86_400_000,
    intervalMs: ms('interval', options.interval, 100) ?? 3_600_000,
    batchSize,
  };
}
