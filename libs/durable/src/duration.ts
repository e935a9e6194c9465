import { InvalidArgumentError } from './errors';
import { messages } from './durable.messages';

/** A number of milliseconds, or a decimal with a unit: '500ms', '1.5s', '5m', '2h', '1d'. */
export type Duration = number | string;

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION_PATTERN = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;

/**
 * Converts a Duration to milliseconds; throws InvalidArgumentError for anything else.
 * @example toMilliseconds('1.5s') // 1500
 */
export function toMilliseconds(value: Duration): number {
  if (typeof value === 'number') {
    if (Number.isFinite(value) && value >= 0 && Number.isSafeInteger(Math.round(value)))
      return Math.round(value);
    throw new InvalidArgumentError(messages.invalidDuration(value));
  }
  const match = typeof value === 'string' ? DURATION_PATTERN.exec(value.trim()) : null;
  const ms = match ? Math.round(Number(match[1]) * UNIT_MS[match[2]]) : NaN;
  if (!Number.isSafeInteger(ms)) throw new InvalidArgumentError(messages.invalidDuration(value));
  return ms;
}

/** Like toMilliseconds, but undefined stays undefined. */
export function toOptionalMilliseconds(value: Duration | undefined): number | undefined {
  return value === undefined ? undefined : toMilliseconds(value);
}
