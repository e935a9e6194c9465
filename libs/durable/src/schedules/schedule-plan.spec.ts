import { cronOf, defineSchedule } from './schedule-definition';
import { MAX_TICKS_PER_SWEEP, planTicks } from './schedule-plan';
import { InvalidArgumentError } from '../errors';

const at = (iso: string) => new Date(`2024-01-01T${iso}Z`);
const everySecond = cronOf({ cron: '* * * * * *', timezone: null });
const iso = (dates: Date[]) => dates.map((d) => d.toISOString().slice(11, 19));

describe('planTicks', () => {
  it('fires every due tick that is on time, and waits for the next', () => {
    const plan = planTicks(everySecond, at('00:00:05'), at('00:00:07.300'), 'none', 1_000);
    expect(iso(plan.fire)).toEqual(['00:00:07']);
    expect(plan.dropped).toEqual({ from: at('00:00:05'), until: at('00:00:06.300') });
    expect(plan.next).toEqual(at('00:00:08'));
  });

  it('fires nothing before the first tick is due', () => {
    const plan = planTicks(everySecond, at('00:00:05'), at('00:00:04.900'), 'all', 1_000);
    expect(plan.fire).toEqual([]);
    expect(plan.next).toEqual(at('00:00:05'));
  });

  it("'all' fires every missed tick, in order", () => {
    const plan = planTicks(everySecond, at('00:00:01'), at('00:00:06.500'), 'all', 1_000);
    expect(iso(plan.fire)).toEqual(['00:00:01', '00:00:02', '00:00:03', '00:00:04', '00:00:05', '00:00:06']);
    expect(plan.dropped).toBeNull();
  });

  it("'latest' fires only the most recent missed tick, plus the ticks on time", () => {
    const plan = planTicks(everySecond, at('00:00:01'), at('00:00:06.500'), 'latest', 1_000);
    expect(iso(plan.fire)).toEqual(['00:00:05', '00:00:06']);
    expect(plan.dropped).not.toBeNull();
  });

  it("'latest' with a single missed tick fires it and drops nothing", () => {
    const hourly = cronOf({ cron: '0 * * * *', timezone: null });
    const plan = planTicks(hourly, at('02:00:00'), at('02:30:00'), 'latest', 60_000);
    expect(iso(plan.fire)).toEqual(['02:00:00']);
    expect(plan.dropped).toBeNull();
    expect(plan.next).toEqual(at('03:00:00'));
  });

  it("'all' after a long outage fires a bounded batch and continues from there", () => {
    const plan = planTicks(everySecond, at('00:00:00'), at('01:00:00'), 'all', 1_000);
    expect(plan.fire).toHaveLength(MAX_TICKS_PER_SWEEP);
    expect(plan.next).toEqual(new Date(at('00:00:00').getTime() + MAX_TICKS_PER_SWEEP * 1_000));
  });

  it('reads the cron expression in the time zone', () => {
    const paris = cronOf({ cron: '0 2 * * *', timezone: 'Europe/Paris' });
    const plan = planTicks(paris, at('01:00:00'), at('01:00:30'), 'none', 60_000);
    expect(plan.fire).toEqual([at('01:00:00')]); // 02:00 in Paris is 01:00 UTC in winter
    expect(plan.next).toEqual(new Date('2024-01-02T01:00:00Z'));
  });
});

describe('defineSchedule', () => {
  it('applies the defaults', () => {
    expect(defineSchedule('report', '0 2 * * *')).toEqual({
      name: 'report',
      workflow: 'report',
      cron: '0 2 * * *',
      timezone: null,
      overlap: 'skip',
      catchUp: 'latest',
      missedAfterMs: 60_000,
    });
  });

  it.each([
    ['a bad cron expression', 'not a cron', {}],
    ['an unknown time zone', '0 2 * * *', { timezone: 'Mars/Olympus' }],
    ['an unknown overlap policy', '0 2 * * *', { overlap: 'replace' }],
    ['an unknown catch-up policy', '0 2 * * *', { catchUp: 'some' }],
    ['a bad missedAfter', '0 2 * * *', { missedAfter: 'soon' }],
    ['a name too long', '0 2 * * *', { name: 'x'.repeat(151) }],
  ])('rejects %s with a typed error', (_what, cron, options) => {
    expect(() => defineSchedule('report', cron, options as never)).toThrow(InvalidArgumentError);
  });
});
