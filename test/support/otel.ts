/**
 * OpenTelemetry SDK for tests: a tracer provider exporting to an in-memory exporter, the async-hooks
 * context manager (so the active span follows async calls), and a meter provider read by the Prometheus
 * exporter, served on a loopback port of our own for scrapes.
 */
import { context, metrics, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  ReadableSpan,
  SimpleSpanProcessor,
  SpanExporter,
} from '@opentelemetry/sdk-trace-base';
import { createServer, Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TestTelemetry {
  spans: InMemorySpanExporter;
  /** GETs the Prometheus text exposition. */
  scrape(): Promise<string>;
  shutdown(): Promise<void>;
}

/** Registers the SDK globally (tracing, and metrics unless `metrics: false`). */
export async function installTestTelemetry(
  options: { exporter?: SpanExporter; metrics?: boolean } = {},
): Promise<TestTelemetry> {
  const spans = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(options.exporter ?? spans)],
  });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(tracerProvider);
  let server: Server | undefined;
  let meterProvider: MeterProvider | undefined;
  let url = '';
  if (options.metrics !== false) {
    const prometheus = new PrometheusExporter({ preventServerStart: true });
    meterProvider = new MeterProvider({ readers: [prometheus] });
    metrics.setGlobalMeterProvider(meterProvider);
    server = createServer((req, res) => prometheus.getMetricsRequestHandler(req, res));
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
  }
  return {
    spans,
    scrape: async () => {
      const response = await fetch(url);
      if (!response.ok) throw new Error(`scrape answered ${response.status}`);
      return response.text();
    },
    shutdown: async () => {
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
      await meterProvider?.shutdown();
      await tracerProvider.shutdown();
      trace.disable();
      metrics.disable();
      context.disable();
    },
  };
}

/** A span as the tests compare them (ids and names; attributes as recorded). */
export interface SpanView {
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  status: number;
  attributes: Record<string, unknown>;
  events: string[];
}

export function viewOf(span: ReadableSpan): SpanView {
  return {
    name: span.name,
    traceId: span.spanContext().traceId,
    spanId: span.spanContext().spanId,
    parentSpanId: span.parentSpanContext?.spanId,
    status: span.status.code,
    attributes: { ...span.attributes },
    events: span.events.map((event) => event.name),
  };
}

/** The value of one Prometheus sample: `name{labels...}` whose labels include every one of `labels`. */
export function sampleValue(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const matches = Object.entries(labels).every(([key, value]) => line.includes(`${key}="${value}"`));
    if (matches) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}
