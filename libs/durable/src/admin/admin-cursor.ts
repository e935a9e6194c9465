import { InvalidArgumentError } from '../errors';
import { messages } from '../durable.messages';

/** A keyset position in the run list: the last row's creation time (as the server printed it) and id. */
export interface RunCursor {
  createdAt: string;
  id: string;
}

export function encodeRunCursor(cursor: RunCursor): string {
  return Buffer.from(JSON.stringify([cursor.createdAt, cursor.id])).toString('base64url');
}

export function decodeRunCursor(text: string): RunCursor {
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as unknown[];
    if (typeof createdAt === 'string' && typeof id === 'string' && !Number.isNaN(Date.parse(createdAt)))
      return { createdAt, id };
  } catch {
    // the typed error below
  }
  throw new InvalidArgumentError(messages.invalidCursor());
}
