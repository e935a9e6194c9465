import { hostname } from 'node:os';
import { resolveDurableOptions } from './durable.options';
import { InvalidOptionsError } from './errors';

describe('resolveDurableOptions', () => {
  it('applies the documented defaults', () => {
    expect(resolveDurableOptions()).toEqual({
      schema: 'durable',
      executorId: `${hostname()}-${process.pid}`,
      worker: true,
      concurrency: 20,
      leaseMs: 30_000,
      heartbeatMs: 5_000,
      pollIntervalMs: 1_000,
      recoverOnStartup: true,
      shutdownTimeoutMs: 10_000,
      maxPayloadBytes: 1024 * 1024,
      preparedStatements: true,
      tracing: true,
      metrics: true,
      queueMetricsIntervalMs: 5_000,
      asyncCheckpoints: false,
      maxRecoveryAttempts: 10,
      maxHistorySteps: 10_000,
      maxHistoryBytes: 64 * 1024 * 1024,
      maxPendingSignals: 1_000,
      maxPendingSignalBytes: 16 * 1024 * 1024,
      queues: [],
    });
  });

  it('derives a default heartbeat that fits a short lease', () => {
    expect(resolveDurableOptions({ leaseMs: 900 }).heartbeatMs).toBe(300);
    expect(resolveDurableOptions({ leaseMs: 600_000 }).heartbeatMs).toBe(5_000);
  });

  it('accepts a schema name of 48 characters, the longest whose channel name fits', () => {
    expect(resolveDurableOptions({ schema: 's' + 'x'.repeat(47) }).schema).toHaveLength(48);
  });

  it('keeps valid explicit values', () => {
    const options = {
      schema: 'my_schema_2',
      executorId: 'pod-7',
      worker: false,
      concurrency: 1,
      leaseMs: 100,
      heartbeatMs: 50,
    };
    expect(resolveDurableOptions(options)).toMatchObject(options);
  });

  it.each([
    ['options', null],
    ['options', 'durable'],
    ['schema', { schema: 'durable"; drop' }],
    ['schema', { schema: '1abc' }],
    ['schema', { schema: 'pg_' + 'x'.repeat(61) }],
    // 49 characters: valid SQL, but its NOTIFY channel (<schema>_events) would be cut at 63 bytes.
    ['schema', { schema: 's' + 'x'.repeat(48) }],
    ['maxRecoveryAttempts', { maxRecoveryAttempts: 0 }],
    ['maxHistorySteps', { maxHistorySteps: 1.5 }],
    ['maxHistoryBytes', { maxHistoryBytes: -1 }],
    ['maxPendingSignals', { maxPendingSignals: 0 }],
    ['maxPendingSignalBytes', { maxPendingSignalBytes: 'lots' }],
    ['concurrency', { concurrency: 10_001 }],
    ['leaseMs', { leaseMs: 99 }],
    ['heartbeatMs', { leaseMs: 100, heartbeatMs: 51 }],
    ['shutdownTimeoutMs', { shutdownTimeoutMs: -1 }],
    ['maxPayloadBytes', { maxPayloadBytes: 1.5 }],
    ['worker', { worker: 0 }],
    ['preparedStatements', { preparedStatements: 'yes' }],
    ['tracing', { tracing: 'on' }],
    ['metrics', { metrics: 1 }],
    ['queueMetricsIntervalMs', { queueMetricsIntervalMs: 50 }],
    ['asyncCheckpoints', { asyncCheckpoints: 'on' }],
    ['unknownOption', { unknownOption: true }],
  ])('rejects a bad %s with InvalidOptionsError naming it', (name, options) => {
    expect(() => resolveDurableOptions(options as never)).toThrow(InvalidOptionsError);
    expect(() => resolveDurableOptions(options as never)).toThrow(`"${name}"`);
  });
});
