import { InvalidArgumentError } from '../errors';
import { messages } from '../durable.messages';
import type { RunStatus } from '../interfaces';
import type { AdminRunFilter } from './admin.interfaces';

/** Query-string (or command-line) form of the run filters: every value is text; empty means unset. */
export type AdminFilterQuery = Partial<Record<keyof AdminRunFilter, unknown>>;

/**
 * Turns text filters (from a URL query or the CLI) into an AdminRunFilter. Times are ISO 8601; one
 * without a zone (as an HTML datetime-local field sends) is UTC. Statuses are comma-separated.
 */
export function parseAdminFilter(query: AdminFilterQuery): AdminRunFilter {
  const value = (key: keyof AdminRunFilter): string | undefined => {
    const raw = query[key];
    const text = Array.isArray(raw) ? raw[raw.length - 1] : raw;
    if (text === undefined || text === null || text === '') return undefined;
    if (typeof text !== 'string') throw new InvalidArgumentError(messages.invalidFilter(key, 'text'));
    return text.trim() === '' ? undefined : text;
  };
  const filter: AdminRunFilter = {};
  const status = value('status');
  if (status)
    filter.status = status
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean) as RunStatus[];
  for (const key of ['workflow', 'version', 'idPrefix', 'errorText', 'after'] as const) {
    const text = value(key);
    if (text !== undefined) filter[key] = text;
  }
  for (const key of ['createdAfter', 'createdBefore'] as const) {
    const text = value(key);
    if (text === undefined) continue;
    const zoned = /(Z|[+-]\d\d:?\d\d)$/i.test(text) ? text : `${text}Z`;
    const date = new Date(zoned);
    if (Number.isNaN(date.getTime()))
      throw new InvalidArgumentError(messages.invalidFilter(key, 'an ISO 8601 time (2026-01-31T12:00Z)'));
    filter[key] = date;
  }
  const limit = value('limit');
  if (limit !== undefined) {
    if (!/^\d+$/.test(limit)) throw new InvalidArgumentError(messages.invalidFilter('limit', 'an integer'));
    filter.limit = Number(limit);
  }
  return filter;
}
