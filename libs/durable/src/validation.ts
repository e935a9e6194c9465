import { MAX_ID_LENGTH } from './durable.constants';
import { messages } from './durable.messages';
import { InvalidArgumentError } from './errors';
import { storableText } from './persistence/json-codec';

/** Ids, signal names and workflow/step names: any string of 1-200 characters, stored literally. */
export function assertValidId(what: string, value: unknown): asserts value is string {
  if (typeof value !== 'string' || value.length < 1 || value.length > MAX_ID_LENGTH || !storableText(value)) {
    throw new InvalidArgumentError(messages.invalidId(what, value, MAX_ID_LENGTH));
  }
}

/** A user-chosen step or workflow name: an id that does not use the library's '$' prefix. */
export function assertValidName(kind: string, value: unknown): asserts value is string {
  assertValidId(`${kind} name`, value);
  if (value.startsWith('$')) throw new InvalidArgumentError(messages.reservedName(kind, value));
}
