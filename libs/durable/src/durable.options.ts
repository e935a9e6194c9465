import { Inject, Injectable } from '@nestjs/common';
import { hostname } from 'node:os';
import {
  DEFAULT_CONCURRENCY,
  DEFAULT_HEARTBEAT_MS,
  DEFAULT_LEASE_MS,
  DEFAULT_MAX_HISTORY_BYTES,
  DEFAULT_MAX_HISTORY_STEPS,
  DEFAULT_MAX_PAYLOAD_BYTES,
  DEFAULT_MAX_PENDING_SIGNAL_BYTES,
  DEFAULT_MAX_PENDING_SIGNALS,
  DEFAULT_MAX_RECOVERY_ATTEMPTS,
  DEFAULT_POLL_INTERVAL_MS,
  DEFAULT_QUEUE_METRICS_INTERVAL_MS,
  DEFAULT_SCHEMA,
  DEFAULT_SHUTDOWN_TIMEOUT_MS,
  MAX_ID_LENGTH,
} from './durable.constants';
import { messages } from './durable.messages';
import { DURABLE_MODULE_OPTIONS } from './durable.module-definition';
import { InvalidOptionsError } from './errors';
import type { DurableModuleOptions, ResolvedDurableOptions } from './interfaces';
import { assertValidSchemaName } from './persistence/schema-name';
import { resolveQueues } from './queues/queue.options';
import { resolveRetention } from './retention/retention.options';

const KNOWN_OPTIONS = new Set<string>([
  'schema',
  'executorId',
  'worker',
  'concurrency',
  'leaseMs',
  'heartbeatMs',
  'pollIntervalMs',
  'recoverOnStartup',
  'shutdownTimeoutMs',
  'maxPayloadBytes',
  'preparedStatements',
  'tracing',
  'metrics',
  'queueMetricsIntervalMs',
  'retention',
  'asyncCheckpoints',
  'maxRecoveryAttempts',
  'maxHistorySteps',
  'maxHistoryBytes',
  'maxPendingSignals',
  'maxPendingSignalBytes',
  'queues',
]);

/** Applies defaults and validates; every problem names the option. */
export function resolveDurableOptions(options: DurableModuleOptions = {}): ResolvedDurableOptions {
  if (options === null || typeof options !== 'object') {
    throw new InvalidOptionsError(messages.invalidOption('options', options, 'an object'));
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(key)) {
      throw new InvalidOptionsError(
        messages.invalidOption(key, (options as Record<string, unknown>)[key], 'no such option'),
      );
    }
  }
  const resolved: ResolvedDurableOptions = {
    schema: options.schema ?? DEFAULT_SCHEMA,
    executorId: options.executorId ?? `${hostname()}-${process.pid}`,
    worker: options.worker ?? true,
    concurrency: options.concurrency ?? DEFAULT_CONCURRENCY,
    leaseMs: options.leaseMs ?? DEFAULT_LEASE_MS,
    heartbeatMs:
      options.heartbeatMs ??
      Math.min(DEFAULT_HEARTBEAT_MS, Math.floor((options.leaseMs ?? DEFAULT_LEASE_MS) / 3)),
    pollIntervalMs: options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS,
    recoverOnStartup: options.recoverOnStartup ?? true,
    shutdownTimeoutMs: options.shutdownTimeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS,
    maxPayloadBytes: options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES,
    preparedStatements: options.preparedStatements ?? true,
    tracing: options.tracing ?? true,
    metrics: options.metrics ?? true,
    queueMetricsIntervalMs: options.queueMetricsIntervalMs ?? DEFAULT_QUEUE_METRICS_INTERVAL_MS,
    retention: resolveRetention(options.retention),
    asyncCheckpoints: options.asyncCheckpoints ?? false,
    maxRecoveryAttempts: options.maxRecoveryAttempts ?? DEFAULT_MAX_RECOVERY_ATTEMPTS,
    maxHistorySteps: options.maxHistorySteps ?? DEFAULT_MAX_HISTORY_STEPS,
    maxHistoryBytes: options.maxHistoryBytes ?? DEFAULT_MAX_HISTORY_BYTES,
    maxPendingSignals: options.maxPendingSignals ?? DEFAULT_MAX_PENDING_SIGNALS,
    maxPendingSignalBytes: options.maxPendingSignalBytes ?? DEFAULT_MAX_PENDING_SIGNAL_BYTES,
    queues: resolveQueues(options.queues),
  };
  assertValidSchemaName(resolved.schema);
  const id = resolved.executorId;
  if (typeof id !== 'string' || id.length < 1 || id.length > MAX_ID_LENGTH) {
    throw new InvalidOptionsError(
      messages.invalidOption('executorId', id, `a string of 1-${MAX_ID_LENGTH} characters`),
    );
  }
  for (const key of [
    'worker',
    'recoverOnStartup',
    'preparedStatements',
    'tracing',
    'metrics',
    'asyncCheckpoints',
  ] as const) {
    if (typeof resolved[key] !== 'boolean')
      throw new InvalidOptionsError(messages.invalidOption(key, resolved[key], 'a boolean'));
  }
  integer('concurrency', resolved.concurrency, 1, 10_000);
  integer('leaseMs', resolved.leaseMs, 100, 86_400_000);
  integer('heartbeatMs', resolved.heartbeatMs, 10, 86_400_000);
  integer('pollIntervalMs', resolved.pollIntervalMs, 10, 3_600_000);
  integer('shutdownTimeoutMs', resolved.shutdownTimeoutMs, 0, 3_600_000);
  integer('maxPayloadBytes', resolved.maxPayloadBytes, 1, 256 * 1024 * 1024);
  integer('queueMetricsIntervalMs', resolved.queueMetricsIntervalMs, 100, 3_600_000);
  integer('maxRecoveryAttempts', resolved.maxRecoveryAttempts, 1, 1_000_000);
  integer('maxHistorySteps', resolved.maxHistorySteps, 1, 10_000_000);
  integer('maxHistoryBytes', resolved.maxHistoryBytes, 1, 1024 * 1024 * 1024);
  integer('maxPendingSignals', resolved.maxPendingSignals, 1, 10_000_000);
  integer('maxPendingSignalBytes', resolved.maxPendingSignalBytes, 1, 1024 * 1024 * 1024);
  if (resolved.heartbeatMs * 2 > resolved.leaseMs) {
    throw new InvalidOptionsError(
      messages.invalidOption(
        'heartbeatMs',
        resolved.heartbeatMs,
        `at most half of leaseMs (${resolved.leaseMs})`,
      ),
    );
  }
  return resolved;
}

function integer(option: string, value: unknown, min: number, max: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidOptionsError(messages.invalidOption(option, value, `an integer from ${min} to ${max}`));
  }
}

/** The resolved options, validated once when the module is created. */
@Injectable()
export class DurableOptionsHolder {
  readonly value: ResolvedDurableOptions;

  constructor(@Inject(DURABLE_MODULE_OPTIONS) options: DurableModuleOptions) {
    this.value = resolveDurableOptions(options);
  }
}
