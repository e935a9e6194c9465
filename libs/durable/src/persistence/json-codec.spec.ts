import { NonSerializableError, PayloadTooLargeError } from '../errors';
import { decodeJson, encodeJson } from './json-codec';

const MiB = 1024 * 1024;

/** What a reader gets back: encoded, stored as JSON (jsonb parses it), decoded. */
const roundTrip = (value: unknown, maxBytes = MiB) =>
  decodeJson(JSON.parse(encodeJson(value, 'Output of step "s#1"', maxBytes)));

/** The error encodeJson throws for `value`, or fails the test. */
function refusal(value: unknown, where = 'Output of step "s#1"'): NonSerializableError {
  try {
    encodeJson(value, where, MiB);
  } catch (error) {
    expect(error).toBeInstanceOf(NonSerializableError);
    return error as NonSerializableError;
  }
  throw new Error(`encodeJson accepted ${String(value)}`);
}

describe('json codec round trip', () => {
  it.each([
    ['a string', 'hello'],
    ['an empty string', ''],
    ['unicode and emoji', 'ünïcødé 日本語 😀👩‍👩‍👧'],
    ['quotes and backslashes', `it's "quoted" \\ back\\slash`],
    ['zero', 0],
    ['a negative float', -12.5],
    ['the largest safe integer', Number.MAX_SAFE_INTEGER],
    ['true', true],
    ['false', false],
    ['null', null],
    ['an empty object', {}],
    ['an empty array', []],
    ['nested data', { a: [1, { b: [true, null, 'x'] }], c: { d: { e: 'deep' } } }],
    ['a string that looks like a date', '2024-01-01T00:00:00.000Z'],
    ['an object without prototype', Object.assign(Object.create(null), { a: 1 })],
  ])('keeps %s', (_, value) => {
    expect(roundTrip(value)).toEqual(value);
  });

  it('keeps Dates as Dates, at any depth', () => {
    const at = new Date('2024-02-29T12:34:56.789Z');
    const back = roundTrip({ at, list: [at, { nested: at }] }) as {
      at: Date;
      list: [Date, { nested: Date }];
    };
    expect(back.at).toBeInstanceOf(Date);
    expect(back.at.toISOString()).toBe(at.toISOString());
    expect(back.list[0]).toEqual(at);
    expect(back.list[1].nested).toBeInstanceOf(Date);
    expect(roundTrip(new Date(0))).toEqual(new Date(0));
  });

  it('keeps undefined as undefined: alone and in arrays', () => {
    expect(roundTrip(undefined)).toBeUndefined();
    const arr = roundTrip([1, undefined, 'x']) as unknown[];
    expect(arr).toHaveLength(3);
    expect(arr[1]).toBeUndefined();
    expect(1 in arr).toBe(true);
  });

  it('drops an undefined property (reads back as undefined, like JSON)', () => {
    const back = roundTrip({ a: 1, b: undefined }) as Record<string, unknown>;
    expect(back).toEqual({ a: 1 });
    expect(back.b).toBeUndefined();
  });

  it('escapes user objects that use the tag key, at any depth', () => {
    const lookalikes = [
      { $durable: 'date', v: 'not a date' },
      { $durable: 'undefined' },
      { $durable: 'object', v: { a: 1 } },
      { $durable: 'something else', extra: [1] },
      { nested: { $durable: 'date', v: '2024-01-01T00:00:00.000Z' } },
      [{ $durable: 'undefined' }],
    ];
    for (const value of lookalikes) expect(roundTrip(value)).toEqual(value);
  });

  it('allows the same object twice (shared, not circular)', () => {
    const shared = { id: 1 };
    expect(roundTrip({ a: shared, b: shared, list: [shared, shared] })).toEqual({
      a: { id: 1 },
      b: { id: 1 },
      list: [{ id: 1 }, { id: 1 }],
    });
  });

  it('stores a class instance as its own enumerable data', () => {
    class Money {
      constructor(
        readonly amount: number,
        readonly currency: string,
      ) {}
    }
    expect(roundTrip(new Money(5, 'EUR'))).toEqual({ amount: 5, currency: 'EUR' });
  });
});

describe('json codec refusals', () => {
  it.each([
    ['a function', () => ({ fn: () => 1 }), '$.fn', 'a function'],
    ['a BigInt', () => ({ n: 10n }), '$.n', 'BigInt'],
    ['a symbol', () => ({ s: Symbol('x') }), '$.s', 'a symbol'],
    ['NaN', () => ({ r: Number.NaN }), '$.r', 'NaN'],
    ['Infinity', () => [Number.POSITIVE_INFINITY], '$[0]', 'Infinity'],
    ['-Infinity', () => [1, Number.NEGATIVE_INFINITY], '$[1]', '-Infinity'],
    ['an invalid Date', () => ({ at: new Date('nope') }), '$.at', 'invalid Date'],
    ['a Map', () => ({ m: new Map() }), '$.m', 'Map'],
    ['a Set', () => ({ s: new Set() }), '$.s', 'Set'],
    ['a WeakMap', () => ({ w: new WeakMap() }), '$.w', 'WeakMap'],
    ['a Promise', () => ({ p: Promise.resolve(1) }), '$.p', 'Promise'],
    ['a Buffer', () => ({ b: Buffer.from('x') }), '$.b', 'binary'],
    ['a typed array', () => ({ t: new Uint8Array(2) }), '$.t', 'binary'],
    ['an ArrayBuffer', () => ({ a: new ArrayBuffer(2) }), '$.a', 'binary'],
    ['a deep function', () => ({ a: [{ b: { c: [0, () => 1] } }] }), '$.a[0].b.c[1]', 'a function'],
  ])('refuses %s, naming the path', (_, value, path, reason) => {
    const error = refusal(value());
    expect(error.path).toBe(path);
    expect(error.message).toContain(path);
    expect(error.message).toContain(reason);
    expect(error.message).toContain('Output of step "s#1"');
  });

  it('refuses a top-level function or BigInt at path $', () => {
    expect(refusal(() => 1).path).toBe('$');
    expect(refusal(1n).path).toBe('$');
  });

  it('refuses a circular reference, naming where it closes', () => {
    const loop: Record<string, unknown> = { name: 'loop' };
    loop.self = loop;
    const error = refusal({ wrapper: loop });
    expect(error.path).toBe('$.wrapper.self');
    expect(error.message).toContain('circular');
    const arr: unknown[] = [1];
    arr.push(arr);
    expect(refusal(arr).path).toBe('$[1]');
  });

  it.each([
    ['a RegExp', () => ({ pattern: /ab+c/gi }), '$.pattern'],
    ['a URL', () => ({ link: new URL('https://example.com/?q=1') }), '$.link'],
    ['an Error', () => ({ failure: new Error('kept?') }), '$.failure'],
  ])('refuses %s, which would silently read back as {}', (_, value, path) => {
    expect(refusal(value()).path).toBe(path);
  });

  it.each([
    ['a NUL character', { text: 'a\u0000b' }, '$.text'],
    ['a NUL character in a key', { ['k\u0000']: 1 }, '$'],
    ['a lone surrogate', { text: 'x\ud800y' }, '$.text'],
  ])('refuses %s, which PostgreSQL jsonb cannot store', (_, value, path) => {
    expect(refusal(value).path).toBe(path);
  });
});

describe('json codec and "__proto__" keys', () => {
  it('stores an own "__proto__" key and revives it as an own property, never as the prototype', () => {
    const value = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}') as Record<string, unknown>;
    const text = encodeJson(value, 'Output of step "s#1"', MiB);
    expect(JSON.parse(text)).toEqual(JSON.parse('{"__proto__": {"polluted": true}, "a": 1}'));
    const back = decodeJson(JSON.parse(text)) as Record<string, unknown>;
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
    expect(Object.keys(back)).toEqual(['__proto__', 'a']);
    expect(Object.getOwnPropertyDescriptor(back, '__proto__')?.value).toEqual({ polluted: true });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('keeps a nested "__proto__" key through jsonb as read back by pg', () => {
    const stored = JSON.parse('{"outer": {"__proto__": [1, 2]}}');
    const back = decodeJson(stored) as { outer: Record<string, unknown> };
    expect(Object.getOwnPropertyDescriptor(back.outer, '__proto__')?.value).toEqual([1, 2]);
    expect(Array.isArray(Object.getPrototypeOf(back.outer))).toBe(false);
  });
});

describe('json codec size limit', () => {
  it('counts UTF-8 bytes of the encoded JSON, limit inclusive', () => {
    const text = encodeJson('abc', 'Input', 100);
    expect(text).toBe('"abc"');
    expect(encodeJson('abc', 'Input', 5)).toBe('"abc"');
    expect(() => encodeJson('abcd', 'Input', 5)).toThrow(PayloadTooLargeError);
    expect(encodeJson('é', 'Input', 4)).toBe('"é"'); // 2 bytes + 2 quotes
    expect(() => encodeJson('éé', 'Input', 5)).toThrow(PayloadTooLargeError);
  });

  it('names the value, its size and the option in the message', () => {
    expect(() => encodeJson({ big: 'x'.repeat(100) }, 'Input of workflow "w"', 50)).toThrow(
      /Input of workflow "w" is 110 bytes as JSON, over the limit of 50 bytes \(option maxPayloadBytes\)/,
    );
  });
});
