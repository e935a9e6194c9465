import { messages } from '../durable.messages';
import { NonSerializableError, PayloadTooLargeError } from '../errors';

/**
 * Values are stored as jsonb. Dates and `undefined` are tagged so they survive the round trip; an
 * object that happens to use the tag key is escaped. Anything that cannot round-trip is refused.
 */
const TAG = '$durable';
type Tagged = { [TAG]: 'date'; v: string } | { [TAG]: 'undefined' } | { [TAG]: 'object'; v: object };

/** Encodes a value to JSON text; throws NonSerializableError / PayloadTooLargeError naming `where`. */
export function encodeJson(value: unknown, where: string, maxBytes: number): string {
  const text = JSON.stringify(toJsonTree(value, where, '$', new Set()));
  const bytes = Buffer.byteLength(text);
  if (bytes > maxBytes) throw new PayloadTooLargeError(messages.payloadTooLarge(where, bytes, maxBytes));
  return text;
}

/** Decodes what encodeJson stored (as parsed by pg from jsonb). */
export function decodeJson(stored: unknown): unknown {
  if (Array.isArray(stored)) return stored.map(decodeJson);
  if (stored === null || typeof stored !== 'object') return stored;
  const record = stored as Record<string, unknown>;
  if (TAG in record) {
    const tagged = record as Tagged;
    if (tagged[TAG] === 'date') return new Date(tagged.v);
    if (tagged[TAG] === 'undefined') return undefined;
    return decodeObject(tagged.v as Record<string, unknown>);
  }
  return decodeObject(record);
}

function decodeObject(record: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(record)) setOwn(out, key, decodeJson(item));
  return out;
}

/**
 * Sets an own, enumerable property, also for keys like "__proto__" that a plain assignment would
 * turn into a prototype change (dropping the key, or worse).
 */
function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') {
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    target[key] = value;
  }
}

const UNSTORABLE_TEXT = 'text PostgreSQL cannot store (a NUL character or a lone UTF-16 surrogate)';

/** PostgreSQL text and jsonb reject NUL characters and unpaired surrogates. */
export function storableText(text: string): boolean {
  return !UNSTORABLE_CHARACTER.test(text);
}

const UNSTORABLE_CHARACTER = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function toJsonTree(value: unknown, where: string, path: string, ancestors: Set<object>): unknown {
  const refuse = (reason: string): never => {
    throw new NonSerializableError(messages.nonSerializable(where, path, reason), path);
  };
  switch (typeof value) {
    case 'undefined':
      return { [TAG]: 'undefined' };
    case 'string':
      return storableText(value) ? value : refuse(UNSTORABLE_TEXT);
    case 'boolean':
      return value;
    case 'number':
      return Number.isFinite(value) ? value : refuse(`${value} (not finite)`);
    case 'bigint':
      return refuse('a BigInt (convert it to a string)');
    case 'symbol':
      return refuse('a symbol');
    case 'function':
      return refuse('a function');
  }
  if (value === null) return null;
  const object = value as object;
  if (object instanceof Date) {
    return Number.isNaN(object.getTime())
      ? refuse('an invalid Date')
      : { [TAG]: 'date', v: object.toISOString() };
  }
  if (
    object instanceof Map ||
    object instanceof Set ||
    object instanceof WeakMap ||
    object instanceof WeakSet
  ) {
    return refuse(`a ${object.constructor.name} (convert it to an array or object)`);
  }
  if (object instanceof Promise) return refuse('a Promise (await it first)');
  if (object instanceof RegExp) return refuse('a RegExp (store its source as a string)');
  if (object instanceof URL) return refuse('a URL (store it with .toString())');
  if (object instanceof Error) return refuse(`an ${object.name} (store its message as a string)`);
  if (ArrayBuffer.isView(object) || object instanceof ArrayBuffer) {
    return refuse('binary data (encode it as base64)');
  }
  if (ancestors.has(object)) return refuse('a circular reference');
  ancestors.add(object);
  try {
    if (Array.isArray(object)) {
      return object.map((item, index) => toJsonTree(item, where, `${path}[${index}]`, ancestors));
    }
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(object)) {
      if (item === undefined) continue; // like JSON: a missing property reads back as undefined
      if (!storableText(key)) return refuse(`an object with a key that is ${UNSTORABLE_TEXT}`);
      setOwn(out, key, toJsonTree(item, where, `${path}.${key}`, ancestors));
    }
    return TAG in out ? { [TAG]: 'object', v: out } : out;
  } finally {
    ancestors.delete(object);
  }
}
