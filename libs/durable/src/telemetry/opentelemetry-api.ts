import type * as Otel from '@opentelemetry/api';
import { loadOptionalPeer } from '../optional-peer';

let api: typeof Otel | null | undefined;

/**
 * `@opentelemetry/api` when the app installed it, else null (then the library emits no telemetry).
 * Its global providers are shared by every copy of the API in the process (CommonJS and ESM builds
 * alike), so the SDK the app registers is the one used here.
 */
export function openTelemetryApi(): typeof Otel | null {
  if (api === undefined) api = loadOptionalPeer<typeof Otel>('@opentelemetry/api') ?? null;
  return api;
}
