import type { Duration } from '../duration';
import { toMilliseconds } from '../duration';
import { messages } from '../durable.messages';
import { InvalidOptionsError } from '../errors';

/**
 * Limits of one queue, enforced when runs are claimed, across every replica on the database.
 * @example queues: { provider: { concurrency: 10, perKeyConcurrency: 2, rateLimit: { limit: 10, period: '1s' } } }
 */
export interface QueueOptions {
  /** Runs of the queue started and not finished at once, across all replicas. Default: no limit. */
  concurrency?: number;
  /** Runs of one key (start's `key`, e.g. a tenant) started and not finished at once. Default: no limit. */
  perKeyConcurrency?: number;
  /** At most `limit` runs of the queue start in any `period` (database clock). Default: no limit. */
  rateLimit?: { limit: number; period: Duration };
}

/** A queue's limits, validated; null means no limit. */
export interface ResolvedQueue {
  name: string;
  concurrency: number | null;
  perKeyConcurrency: number | null;
  rateLimit: number | null;
  ratePeriodMs: number | null;
}

const QUEUE_NAME = /^[A-Za-z0-9_.:-]{1,100}$/;
const KNOWN = new Set(['concurrency', 'perKeyConcurrency', 'rateLimit']);
const MAX_LIMIT = 1_000_000;
const MAX_PERIOD_MS = 86_400_000;

/** Validates the `queues` module option; every problem names the option. */
export function resolveQueues(options: Record<string, QueueOptions> | undefined): ResolvedQueue[] {
  if (options === undefined) return [];
  if (options === null || typeof options !== 'object' || Array.isArray(options))
    throw new InvalidOptionsError(
      messages.invalidOption('queues', options, 'an object of queue options by queue name'),
    );
  return Object.entries(options).map(([name, queue]) => {
    if (!QUEUE_NAME.test(name))
      throw new InvalidOptionsError(
        messages.invalidOption(`queues.${name}`, name, 'a queue name of 1-100 letters, digits, _ . : or -'),
      );
    const option = (key: string) => `queues.${name}.${key}`;
    if (queue === null || typeof queue !== 'object' || Array.isArray(queue))
      throw new InvalidOptionsError(
        messages.invalidOption(`queues.${name}`, queue, '{ concurrency?, perKeyConcurrency?, rateLimit? }'),
      );
    for (const key of Object.keys(queue)) {
      if (!KNOWN.has(key))
        throw new InvalidOptionsError(
          messages.invalidOption(option(key), (queue as Record<string, unknown>)[key], 'no such option'),
        );
    }
    const count = (key: string, value: unknown): number | null => {
      if (value === undefined) return null;
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_LIMIT)
        throw new InvalidOptionsError(
          messages.invalidOption(option(key), value, `an integer from 1 to ${MAX_LIMIT}`),
        );
      return value;
    };
    const rate = queue.rateLimit;
    let rateLimit: number | null = null;
    let ratePeriodMs: number | null = null;
    if (rate !== undefined) {
      if (rate === null || typeof rate !== 'object' || Array.isArray(rate))
        throw new InvalidOptionsError(messages.invalidOption(option('rateLimit'), rate, '{ limit, period }'));
      for (const key of Object.keys(rate)) {
        if (key !== 'limit' && key !== 'period')
          throw new InvalidOptionsError(
            messages.invalidOption(
              option(`rateLimit.${key}`),
              (rate as Record<string, unknown>)[key],
              'no such option',
            ),
          );
      }
      rateLimit = count('rateLimit.limit', rate.limit);
      if (rateLimit === null)
        throw new InvalidOptionsError(
          messages.invalidOption(option('rateLimit.limit'), undefined, `an integer from 1 to ${MAX_LIMIT}`),
        );
      try {
        ratePeriodMs = toMilliseconds(rate.period);
      } catch {
        ratePeriodMs = null;
      }
      if (ratePeriodMs === null || ratePeriodMs < 1 || ratePeriodMs > MAX_PERIOD_MS)
        throw new InvalidOptionsError(
          messages.invalidOption(
            option('rateLimit.period'),
            rate.period,
            "a duration from 1 ms to 1 day ('1s', '500ms', '1m')",
          ),
        );
    }
    return {
      name,
      concurrency: count('concurrency', queue.concurrency),
      perKeyConcurrency: count('perKeyConcurrency', queue.perKeyConcurrency),
      rateLimit,
      ratePeriodMs,
    };
  });
}
