import { messages } from '../durable.messages';
import { InvalidOptionsError } from '../errors';

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

/** The schema is interpolated into SQL, so only plain lower-case identifiers are accepted. */
export function assertValidSchemaName(schema: unknown): asserts schema is string {
  if (typeof schema !== 'string' || !IDENTIFIER.test(schema)) {
    throw new InvalidOptionsError(
      messages.invalidOption(
        'schema',
        schema,
        'a lower-case SQL identifier matching /^[a-z_][a-z0-9_]{0,62}$/',
      ),
    );
  }
}

/** LISTEN/NOTIFY channel of a schema's events. */
export function channelName(schema: string): string {
  return `${schema}_events`;
}
