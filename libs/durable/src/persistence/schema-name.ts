import { messages } from '../durable.messages';
import { InvalidOptionsError } from '../errors';

/**
 * A plain lower-case identifier of at most 48 characters: PostgreSQL truncates names past 63 bytes,
 * and the schema's LISTEN/NOTIFY channel (`<schema>_events`) must fit as well, with room to spare.
 */
const IDENTIFIER = /^[a-z_][a-z0-9_]{0,47}$/;

/** The schema is interpolated into SQL, so only plain lower-case identifiers are accepted. */
export function assertValidSchemaName(schema: unknown): asserts schema is string {
  if (typeof schema !== 'string' || !IDENTIFIER.test(schema)) {
    throw new InvalidOptionsError(
      messages.invalidOption(
        'schema',
        schema,
        'a lower-case SQL identifier of 1-48 characters matching /^[a-z_][a-z0-9_]{0,47}$/',
      ),
    );
  }
}

/** LISTEN/NOTIFY channel of a schema's events. */
export function channelName(schema: string): string {
  return `${schema}_events`;
}
