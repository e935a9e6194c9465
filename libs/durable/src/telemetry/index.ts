export { DurableMetrics } from './durable.metrics';
export { DurableTracing } from './durable.tracing';
export { QueueStats, QueueSample } from './queue-stats';
export { ATTR as DURABLE_TELEMETRY_ATTRIBUTES, METRIC as DURABLE_METRICS } from './telemetry.names';
