import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import type * as Otel from '@opentelemetry/api';
import { DurableOptionsHolder } from '../durable.options';
import { DurableEvents } from '../engine/durable.events';
import type { RunEventBase } from '../events/lifecycle-events';
import { openTelemetryApi } from './opentelemetry-api';
import { QueueStats } from './queue-stats';
import { ATTR, INSTRUMENTATION_SCOPE, METRIC } from './telemetry.names';

const DURATION_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
const ATTEMPT_BUCKETS = [1, 2, 3, 4, 5, 6, 8, 10, 15, 20];

/**
 * OpenTelemetry metrics through the global MeterProvider, fed by the lifecycle events, plus the queue
 * gauges, read from the database only when a reader collects them (see QueueStats). Every replica
 * reports its own counters; the queue gauges describe the shared queue, so each replica reports the
 * same value: aggregate them with max, not sum. A no-op without `@opentelemetry/api` or with option
 * `metrics: false`.
 */
@Injectable()
export class DurableMetrics implements OnModuleInit {
  private readonly logger = new Logger('Durable');

  constructor(
    private readonly events: DurableEvents,
    private readonly queue: QueueStats,
    private readonly options: DurableOptionsHolder,
  ) {}

  onModuleInit(): void {
    const api = this.options.value.metrics ? openTelemetryApi() : null;
    if (api) this.register(api.metrics.getMeter(INSTRUMENTATION_SCOPE));
  }

  private register(meter: Otel.Meter): void {
    const counter = (name: string, description: string, unit: string) =>
      meter.createCounter(name, { description, unit });
    const started = counter(METRIC.runsStarted, 'Runs started by this process', '{run}');
    const finished = counter(METRIC.runsFinished, 'Runs ended by this process, by status', '{run}');
    const claimed = counter(METRIC.runsClaimed, 'Claims of runs by this process', '{run}');
    const recovered = counter(METRIC.runsRecovered, 'Interrupted runs returned to the queue', '{run}');
    const leasesLost = counter(METRIC.leasesLost, 'Runs this process abandoned: another owns them', '{run}');
    const reconnects = counter(METRIC.listenerReconnects, 'LISTEN connection re-established', '{reconnect}');
    const stepDuration = meter.createHistogram(METRIC.stepDuration, {
      description: 'Duration of a step attempt (body and checkpoint)',
      unit: 's',
      advice: { explicitBucketBoundaries: DURATION_BUCKETS_S },
    });
    const stepAttempts = meter.createHistogram(METRIC.stepAttempts, {
      description: 'Attempts a step took, recorded when it succeeded or failed for good',
      unit: '{attempt}',
      advice: { explicitBucketBoundaries: ATTEMPT_BUCKETS },
    });
    // Attribute objects are written out, not spread: spreading objects with dotted keys costs microseconds.
    const run = (e: RunEventBase) => ({ [ATTR.workflow]: e.workflow, [ATTR.version]: e.version });
    const { events } = this;
    events.on('run.started', (e) => started.add(1, run(e)));
    events.on('run.finished', (e) =>
      finished.add(1, { [ATTR.workflow]: e.workflow, [ATTR.version]: e.version, [ATTR.runStatus]: e.status }),
    );
    events.on('run.set-aside', (e) =>
      finished.add(1, { [ATTR.workflow]: e.workflow, [ATTR.version]: e.version, [ATTR.runStatus]: 'failed' }),
    );
    events.on('run.claimed', (e) => claimed.add(1, run(e)));
    events.on('run.lease-lost', (e) => leasesLost.add(1, run(e)));
    events.on('runs.recovered', (e) => recovered.add(e.count, { [ATTR.trigger]: e.trigger }));
    events.on('listener.reconnected', () => reconnects.add(1));
    for (const type of ['step.succeeded', 'step.retrying', 'step.failed'] as const) {
      const outcome = type.slice('step.'.length);
      events.on(type, (e) => {
        const step = {
          [ATTR.workflow]: e.workflow,
          [ATTR.version]: e.version,
          [ATTR.stepName]: e.stepName,
          [ATTR.stepOutcome]: outcome,
        };
        stepDuration.record(e.durationMs / 1000, step);
        if (type !== 'step.retrying') stepAttempts.record(e.attempt, step);
      });
    }

    const depth = meter.createObservableGauge(METRIC.queueDepth, {
      description: 'Runs due and not claimed (shared by all replicas)',
      unit: '{run}',
    });
    const oldest = meter.createObservableGauge(METRIC.queueOldestAge, {
      description: 'Age of the oldest due run not claimed (shared by all replicas)',
      unit: 's',
    });
    meter.addBatchObservableCallback(
      async (result) => {
        try {
          const sample = await this.queue.sample();
          result.observe(depth, sample.due);
          result.observe(oldest, sample.oldestAgeSeconds);
        } catch (error) {
          this.logger.warn(`Queue metrics could not be read: ${(error as Error).message}`);
        }
      },
      [depth, oldest],
    );
  }
}
