import type * as Otel from '@opentelemetry/api';

/** What a run stores of the trace context that started it (W3C Trace Context fields). */
interface StoredTraceContext {
  traceparent: string;
  tracestate?: string;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/**
 * The active span's context as stored with a new run: W3C `traceparent` (and `tracestate`), read from
 * the span context itself, so it does not depend on which propagator the app registered.
 */
export function serializeTraceContext(api: typeof Otel): string | undefined {
  const span = api.trace.getSpanContext(api.context.active());
  if (!span || !api.isSpanContextValid(span)) return undefined;
  const flags = (span.traceFlags & 0xff).toString(16).padStart(2, '0');
  const stored: StoredTraceContext = { traceparent: `00-${span.traceId}-${span.spanId}-${flags}` };
  const state = span.traceState?.serialize();
  if (state) stored.tracestate = state;
  return JSON.stringify(stored);
}

/** The context a run's executions continue: the stored span as a remote parent, else a new trace. */
export function parentContextOf(api: typeof Otel, stored: string | null | undefined): Otel.Context {
  if (!stored) return api.ROOT_CONTEXT;
  let parsed: Partial<StoredTraceContext>;
  try {
    parsed = JSON.parse(stored) as Partial<StoredTraceContext>;
  } catch {
    return api.ROOT_CONTEXT;
  }
  const match = TRACEPARENT.exec(parsed.traceparent ?? '');
  if (!match) return api.ROOT_CONTEXT;
  const spanContext: Otel.SpanContext = {
    traceId: match[1],
    spanId: match[2],
    traceFlags: parseInt(match[3], 16),
    isRemote: true,
  };
  if (typeof parsed.tracestate === 'string' && api.createTraceState) {
    spanContext.traceState = api.createTraceState(parsed.tracestate);
  }
  return api.isSpanContextValid(spanContext)
    ? api.trace.setSpanContext(api.ROOT_CONTEXT, spanContext)
    : api.ROOT_CONTEXT;
}
