import { ProviderRejectedError, ProviderUnavailableError } from './provider.errors';

export interface CallOptions {
  /** Sent as the Idempotency-Key header: the durable step's key, stable across retries and restarts. */
  idempotencyKey?: string;
  /** The step's AbortSignal (cancel, lease lost, step timeout). */
  signal?: AbortSignal;
}

/**
 * One JSON call to the provider. Maps the outcome to the errors the steps' retry policies understand:
 * ProviderUnavailableError (retried) or ProviderRejectedError (not retried). An abort by the step's
 * own signal rethrows the signal's reason (the library's cancellation or timeout error).
 * Returns null for a 404 when `notFoundIsNull` (deletes are idempotent).
 */
export async function providerCall<T>(
  baseUrl: string,
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  body: unknown,
  options: CallOptions & { timeoutMs: number; notFoundIsNull?: boolean },
): Promise<T | null> {
  const timeout = AbortSignal.timeout(options.timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (options.idempotencyKey) headers['idempotency-key'] = options.idempotencyKey;
  const what = `${method} ${path}`;
  let response: Response;
  try {
    response = await fetch(`${baseUrl}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  } catch (error) {
    if (options.signal?.aborted) throw options.signal.reason;
    const reason = timeout.aborted ? `no answer within ${options.timeoutMs} ms` : causeOf(error);
    throw new ProviderUnavailableError(`${what}: ${reason}`);
  }
  const text = await response.text().catch(() => '');
  const payload = parse(text);
  if (response.ok) return (payload ?? undefined) as T;
  const message = `${what} answered ${response.status}: ${messageOf(payload) ?? (text.slice(0, 200) || response.statusText)}`;
  if (response.status === 404 && options.notFoundIsNull) return null;
  if (response.status >= 500 || response.status === 409 || response.status === 429 || response.status === 408)
    throw new ProviderUnavailableError(message);
  throw new ProviderRejectedError(response.status, message);
}

function parse(text: string): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function messageOf(payload: unknown): string | undefined {
  const message = (payload as { message?: unknown } | undefined)?.message;
  return typeof message === 'string' ? message : undefined;
}

function causeOf(error: unknown): string {
  const err = error as Error & { cause?: { code?: string; message?: string } };
  return err?.cause?.code ?? err?.cause?.message ?? err?.message ?? String(error);
}
