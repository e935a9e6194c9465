/** Instrumentation scope of the library's tracer and meter. */
export const INSTRUMENTATION_SCOPE = 'nest-durable';

/** Span and metric attributes (OpenTelemetry naming: a `durable.` namespace, dotted, snake_case). */
export const ATTR = {
  runId: 'durable.run.id',
  workflow: 'durable.workflow.name',
  version: 'durable.workflow.version',
  runAttempt: 'durable.run.attempt',
  runOutcome: 'durable.run.outcome',
  runStatus: 'durable.run.status',
  parentRunId: 'durable.run.parent_id',
  stepKey: 'durable.step.key',
  stepName: 'durable.step.name',
  stepKind: 'durable.step.kind',
  stepAttempt: 'durable.step.attempt',
  stepOutcome: 'durable.step.outcome',
  executorId: 'durable.executor.id',
  trigger: 'durable.recovery.trigger',
} as const;

/** Metric names (OpenTelemetry semantic-convention style: dotted, no unit or `_total` in the name). */
export const METRIC = {
  runsStarted: 'durable.runs.started',
  runsFinished: 'durable.runs.finished',
  runsClaimed: 'durable.runs.claimed',
  runsRecovered: 'durable.runs.recovered',
  leasesLost: 'durable.leases.lost',
  stepDuration: 'durable.step.duration',
  stepAttempts: 'durable.step.attempts',
  queueDepth: 'durable.queue.depth',
  queueOldestAge: 'durable.queue.oldest_age',
  listenerReconnects: 'durable.listener.reconnects',
} as const;
