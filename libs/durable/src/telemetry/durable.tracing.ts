import { Injectable } from '@nestjs/common';
import type * as Otel from '@opentelemetry/api';
import { DurableOptionsHolder } from '../durable.options';
import type { RunEnded } from '../engine/durable.events';
import { ExecutionObserver, ObservedStepAttempt, runExecutionOutcome } from '../engine/execution.observer';
import type { RunExecution } from '../engine/run-execution';
import { openTelemetryApi } from './opentelemetry-api';
import { ATTR, INSTRUMENTATION_SCOPE } from './telemetry.names';
import { parentContextOf, serializeTraceContext } from './trace-context';

/**
 * OpenTelemetry spans for the engine: `durable.run <workflow>` around each execution of a run, child
 * of the span that called start() (stored with the run, so every replica continues the same trace,
 * also after a crash); `durable.step <name>` around each step attempt, child of the run span. Both run
 * in their span's context, so spans the step's code creates nest under the step.
 * A no-op without `@opentelemetry/api` or with option `tracing: false`.
 */
@Injectable()
export class DurableTracing extends ExecutionObserver {
  private readonly api: typeof Otel | null;
  private readonly tracer?: Otel.Tracer;

  constructor(options: DurableOptionsHolder) {
    super();
    this.api = options.value.tracing ? openTelemetryApi() : null;
    this.tracer = this.api?.trace.getTracer(INSTRUMENTATION_SCOPE);
  }

  override startContext(): string | undefined {
    return this.api ? serializeTraceContext(this.api) : undefined;
  }

  override run(
    execution: RunExecution,
    body: () => Promise<RunEnded | undefined>,
  ): Promise<RunEnded | undefined> {
    const { api, tracer } = this;
    if (!api || !tracer) return body();
    const { run } = execution;
    const parent = parentContextOf(api, run.trace_context);
    const span = tracer.startSpan(
      `durable.run ${run.workflow}`,
      {
        kind: api.SpanKind.INTERNAL,
        // Literal attribute objects: spreading objects with dotted keys costs microseconds per call.
        attributes: {
          [ATTR.runId]: run.id,
          [ATTR.workflow]: run.workflow,
          [ATTR.version]: run.version,
          [ATTR.runAttempt]: run.attempts,
          [ATTR.executorId]: execution.lease.executorId,
        },
      },
      parent,
    );
    return api.context.with(api.trace.setSpan(parent, span), async () => {
      try {
        const ended = await body();
        const outcome = runExecutionOutcome(execution, ended);
        span.setAttribute(ATTR.runOutcome, outcome);
        const halt = execution.halted;
        if (outcome === 'failed') this.fail(span, halt?.error ?? ended?.error);
        else if (halt && outcome !== 'parked') span.recordException(halt.error);
        return ended;
      } catch (error) {
        this.fail(span, error);
        throw error;
      } finally {
        span.end();
      }
    });
  }

  override stepAttempt<T>(
    execution: RunExecution,
    step: ObservedStepAttempt,
    body: () => Promise<T>,
  ): Promise<T> {
    const { api, tracer } = this;
    if (!api || !tracer) return body();
    const { run } = execution;
    const span = tracer.startSpan(`durable.step ${step.name}`, {
      kind: api.SpanKind.INTERNAL,
      attributes: {
        [ATTR.runId]: run.id,
        [ATTR.workflow]: run.workflow,
        [ATTR.version]: run.version,
        [ATTR.stepKey]: step.key,
        [ATTR.stepName]: step.name,
        [ATTR.stepKind]: step.kind,
        [ATTR.stepAttempt]: step.attempt,
      },
    });
    return api.context.with(api.trace.setSpan(api.context.active(), span), async () => {
      try {
        const output = await body();
        span.setAttribute(ATTR.stepOutcome, 'succeeded');
        return output;
      } catch (error) {
        span.setAttribute(ATTR.stepOutcome, 'failed');
        this.fail(span, error);
        throw error;
      } finally {
        span.end();
      }
    });
  }

  /** Records the error on the span (an Error, or an error as recorded: name, message, stack). */
  private fail(span: Otel.Span, error: unknown): void {
    const { name, message, stack } = (error ?? {}) as { name?: string; message?: string; stack?: string };
    span.recordException({ name: name ?? 'Error', message: message ?? String(error), stack });
    span.setStatus({ code: this.api!.SpanStatusCode.ERROR, message: message ?? String(error) });
  }
}
