import type { ResolvedRetryPolicy } from '../decorators';
import { delay, retryDelay } from './retry-delay';

const policy = (overrides: Partial<ResolvedRetryPolicy> = {}): ResolvedRetryPolicy => ({
  maxAttempts: 10,
  initialDelayMs: 1_000,
  backoffFactor: 2,
  maxDelayMs: 60_000,
  nonRetryable: [],
  ...overrides,
});

describe('retryDelay (exponential backoff with equal jitter)', () => {
  afterEach(() => jest.restoreAllMocks());

  it.each([
    [1, 500, 1_000],
    [2, 1_000, 2_000],
    [3, 2_000, 4_000],
    [7, 30_000, 60_000], // 64 s capped at maxDelay
    [30, 30_000, 60_000],
  ])('after failed attempt %i waits between %i and %i ms', (attempt, min, max) => {
    jest.spyOn(Math, 'random').mockReturnValue(0);
    expect(retryDelay(policy(), attempt)).toBe(min);
    jest.spyOn(Math, 'random').mockReturnValue(0.999999);
    expect(retryDelay(policy(), attempt)).toBe(max);
  });

  it('stays within its bounds with real randomness', () => {
    for (let i = 0; i < 1_000; i++) {
      const wait = retryDelay(policy({ initialDelayMs: 100, backoffFactor: 3 }), 2);
      expect(wait).toBeGreaterThanOrEqual(150);
      expect(wait).toBeLessThanOrEqual(300);
    }
  });

  it('is constant with backoffFactor 1 and zero with initialDelay 0', () => {
    jest.spyOn(Math, 'random').mockReturnValue(0.999999);
    expect(retryDelay(policy({ backoffFactor: 1 }), 9)).toBe(1_000);
    expect(retryDelay(policy({ initialDelayMs: 0 }), 3)).toBe(0);
  });
});

describe('delay', () => {
  it('resolves after the time', async () => {
    const started = Date.now();
    await delay(30);
    expect(Date.now() - started).toBeGreaterThanOrEqual(25);
  });

  it('rejects with the reason of an already aborted signal', async () => {
    const reason = new Error('stop');
    await expect(delay(10_000, AbortSignal.abort(reason))).rejects.toBe(reason);
  });

  it('rejects at once when its signal aborts during the wait', async () => {
    const controller = new AbortController();
    // An hour: rejecting before the test's own timeout means rejecting on the abort.
    const waiting = delay(3_600_000, controller.signal);
    setTimeout(() => controller.abort(new Error('halted')), 20);
    await expect(waiting).rejects.toThrow('halted');
  });

  it('does not resolve early for a wait longer than a 32-bit timer holds (about 24.8 days)', async () => {
    const controller = new AbortController();
    const long = delay(2 ** 31, controller.signal).then(
      () => 'resolved',
      () => 'aborted',
    );
    const outcome = await Promise.race([
      long,
      new Promise((resolve) => setTimeout(() => resolve('still waiting'), 50)),
    ]);
    controller.abort(new Error('test over'));
    await long;
    expect(outcome).toBe('still waiting');
  });
});
