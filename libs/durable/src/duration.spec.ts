import { toMilliseconds, toOptionalMilliseconds } from './duration';
import { InvalidArgumentError } from './errors';

describe('toMilliseconds', () => {
  it.each([
    [0, 0],
    [250, 250],
    [1.4, 1],
    [1.5, 2],
    ['0ms', 0],
    ['500ms', 500],
    ['30s', 30_000],
    ['1.5s', 1_500],
    ['0.25s', 250],
    ['5m', 300_000],
    ['2h', 7_200_000],
    ['1d', 86_400_000],
    ['1.5d', 129_600_000],
    ['007s', 7_000],
    ['0.0004s', 0],
  ])('converts %j to %d ms', (input, expected) => {
    expect(toMilliseconds(input)).toBe(expected);
  });

  it.each([
    -1,
    -0.5,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    '',
    ' ',
    '5',
    '5 s',
    '5sec',
    '5 minutes',
    '1w',
    '1y',
    '5S',
    '5M',
    '-5s',
    '+5s',
    '.5s',
    '5.s',
    '1.5.s',
    '1,5s',
    '1e3ms',
    '0x10ms',
    'Infinityms',
    'NaNs',
    's',
    'ms',
    '5ms5',
    '5s;drop',
  ])('rejects %j with InvalidArgumentError', (input) => {
    expect(() => toMilliseconds(input)).toThrow(InvalidArgumentError);
  });

  it.each([null, undefined, {}, [], ['5s'], true, 5n, Symbol('5s'), () => 5, new Date(0)])(
    'rejects the non-duration value %p',
    (input) => {
      expect(() => toMilliseconds(input as never)).toThrow(InvalidArgumentError);
    },
  );

  it('says what a duration looks like', () => {
    expect(() => toMilliseconds('soon')).toThrow(/"soon".*'500ms', '1\.5s', '5m', '2h', '1d'/);
  });

  it('never returns a non-finite number, even for digit strings too large for a double', () => {
    const huge = `1${'0'.repeat(400)}ms`;
    let result: number | undefined;
    try {
      result = toMilliseconds(huge);
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidArgumentError);
      return;
    }
    expect(Number.isFinite(result)).toBe(true);
  });
});

describe('toOptionalMilliseconds', () => {
  it('keeps undefined, converts the rest, rejects invalid values', () => {
    expect(toOptionalMilliseconds(undefined)).toBeUndefined();
    expect(toOptionalMilliseconds('2s')).toBe(2_000);
    expect(() => toOptionalMilliseconds('2 s')).toThrow(InvalidArgumentError);
    expect(() => toOptionalMilliseconds(null as never)).toThrow(InvalidArgumentError);
  });
});
