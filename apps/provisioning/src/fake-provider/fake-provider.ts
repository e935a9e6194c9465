import { randomUUID } from 'node:crypto';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A fake cloud provider and mail service on loopback: what the provisioning workflow talks to at the
 * edge. It behaves like a well-behaved real API (Stripe-style idempotency keys: a repeated create with
 * the same key returns the same resource and creates nothing) and records every call, so tests and the
 * demo can check what happened out there. Plain node:http, no Nest: it runs inside the app process
 * (npm start, the e2e tests) or as a process of its own that survives the app being killed
 * (fake-provider.main.ts: the demo and the crash test).
 *
 *   POST   /databases      { tenantId, tenantName, plan, region }   Idempotency-Key   -> 201 { id, host, ... }
 *   DELETE /databases/:id                                                             -> 204 (404 if unknown)
 *   POST   /dns-records    { tenantId, tenantName, name, target }    Idempotency-Key   -> 201 { id, fqdn, ... }
 *   DELETE /dns-records/:id                                                           -> 204 (404 if unknown)
 *   POST   /emails         { tenantId, tenantName, to, template }    Idempotency-Key   -> 202 { id }
 *   GET    /calls?tenantId=   every call recorded, oldest first
 *   GET    /resources?tenantId=  databases, DNS records and emails (deleted ones too)
 *   GET    /health
 *   POST   /_control/faults { operation?, tenantName?, tenantNamePrefix?, status?, times?, when? } -> { id }
 *   DELETE /_control/faults   removes every fault
 *   POST   /_control/reset    forgets everything (calls, resources, keys, faults)
 *
 * Injected failures: a fault (control API) or, at random, `failureRate` of the calls answer 503. A 503
 * injected `when: 'after'` is a lost response: the effect happened and the key remembers it, so the
 * client's retry gets the resource that was created. Faults with a 4xx status are permanent refusals.
 */

export type ProviderOperation =
  'createDatabase' | 'deleteDatabase' | 'createDnsRecord' | 'deleteDnsRecord' | 'sendEmail';

export interface ProviderCall {
  seq: number;
  at: string;
  operation: ProviderOperation;
  method: string;
  path: string;
  tenantId: string | null;
  tenantName: string | null;
  idempotencyKey: string | null;
  status: number;
  /** created | replayed (same key, same resource) | deleted | not_found | sent | injected_failure | rejected | in_progress */
  outcome: string;
  resourceId: string | null;
  /** Set when the failure was injected: 'before' (nothing happened) or 'after' (effect applied, response lost). */
  injected?: 'before' | 'after';
  durationMs: number;
}

export interface FakeDatabase {
  id: string;
  tenantId: string;
  tenantName: string;
  plan: string;
  region: string;
  host: string;
  createdAt: string;
  deletedAt: string | null;
}

export interface FakeDnsRecord {
  id: string;
  tenantId: string;
  tenantName: string;
  fqdn: string;
  target: string;
  createdAt: string;
  deletedAt: string | null;
}

export interface FakeEmail {
  id: string;
  tenantId: string;
  tenantName: string;
  to: string;
  template: string;
  sentAt: string;
}

export interface FaultSpec {
  operation?: ProviderOperation;
  tenantName?: string;
  tenantNamePrefix?: string;
  /** HTTP status to answer. Default 503 (transient); a 4xx is a permanent refusal. */
  status?: number;
  /** How many matching calls fail; default: all of them. */
  times?: number;
  /** 'before' (default): nothing happens. 'after': the effect happens, then the response is lost. */
  when?: 'before' | 'after';
}

interface Fault extends Required<Pick<FaultSpec, 'status' | 'when'>> {
  id: string;
  operation?: ProviderOperation;
  tenantName?: string;
  tenantNamePrefix?: string;
  remaining: number;
}

export interface FakeProviderOptions {
  /** Latency of every call in ms: [min, max]. Default [0, 0]. */
  latencyMs?: [number, number];
  /** Share (0..1) of calls that answer 503 at random; half of those after the effect. Default 0. */
  failureRate?: number;
  /** Random source (tests may pass a seeded one). */
  random?: () => number;
}

interface Stored {
  operation: ProviderOperation;
  fingerprint: string;
  status: number;
  body: unknown;
  resourceId: string;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const MAX_BODY_BYTES = 64 * 1024;

export class FakeProvider {
  private server?: Server;
  private seq = 0;
  private calls: ProviderCall[] = [];
  private databases = new Map<string, FakeDatabase>();
  private dnsRecords = new Map<string, FakeDnsRecord>();
  private emails: FakeEmail[] = [];
  private keys = new Map<string, Stored>();
  private inFlight = new Set<string>();
  private faults: Fault[] = [];
  private readonly latency: [number, number];
  private readonly failureRate: number;
  private readonly random: () => number;

  constructor(options: FakeProviderOptions = {}) {
    this.latency = options.latencyMs ?? [0, 0];
    this.failureRate = options.failureRate ?? 0;
    this.random = options.random ?? Math.random;
  }

  /** Starts listening on loopback; resolves with the base URL (port 0 picks a free port). */
  async listen(port = 0, host = '127.0.0.1'): Promise<string> {
    const server = createServer((req, res) => {
      this.handle(req, res).catch((error: unknown) => {
        const status = error instanceof HttpError ? error.status : 500;
        if (!res.headersSent) send(res, status, { message: (error as Error)?.message ?? String(error) });
        else res.destroy();
      });
    });
    server.keepAliveTimeout = 5_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    this.server = server;
    const address = server.address() as AddressInfo;
    return `http://${host}:${address.port}`;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  // ------------------------------------------------------------------------------------------
  // state, also for in-process callers (tests)

  getCalls(tenantId?: string): ProviderCall[] {
    return this.calls.filter((call) => tenantId === undefined || call.tenantId === tenantId);
  }

  getResources(tenantId?: string) {
    const mine = <T extends { tenantId: string }>(items: Iterable<T>) =>
      [...items].filter((item) => tenantId === undefined || item.tenantId === tenantId);
    return {
      databases: mine(this.databases.values()),
      dnsRecords: mine(this.dnsRecords.values()),
      emails: mine(this.emails),
    };
  }

  addFault(spec: FaultSpec): string {
    const status = spec.status ?? 503;
    if (!Number.isInteger(status) || status < 400 || status > 599)
      throw new HttpError(400, 'status: an HTTP error status (400-599)');
    const when = spec.when ?? 'before';
    if (when !== 'before' && when !== 'after') throw new HttpError(400, "when: 'before' or 'after'");
    const times = spec.times ?? Number.POSITIVE_INFINITY;
    if (!(times > 0)) throw new HttpError(400, 'times: a positive number');
    const fault: Fault = {
      id: randomUUID(),
      operation: spec.operation,
      tenantName: spec.tenantName,
      tenantNamePrefix: spec.tenantNamePrefix,
      status,
      when,
      remaining: times,
    };
    this.faults.push(fault);
    return fault.id;
  }

  clearFaults(): void {
    this.faults = [];
  }

  reset(): void {
    this.calls = [];
    this.databases.clear();
    this.dnsRecords.clear();
    this.emails = [];
    this.keys.clear();
    this.faults = [];
    this.seq = 0;
  }

  // ------------------------------------------------------------------------------------------
  // HTTP

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://provider');
    const method = req.method ?? 'GET';
    const path = url.pathname;
    const body = method === 'POST' ? await readJson(req) : {};

    if (method === 'GET' && path === '/health') return send(res, 200, { ok: true });
    if (method === 'GET' && path === '/calls')
      return send(res, 200, { calls: this.getCalls(url.searchParams.get('tenantId') ?? undefined) });
    if (method === 'GET' && path === '/resources')
      return send(res, 200, this.getResources(url.searchParams.get('tenantId') ?? undefined));
    if (path === '/_control/faults' && method === 'POST') {
      try {
        return send(res, 201, { id: this.addFault(body as FaultSpec) });
      } catch (error) {
        return send(res, (error as HttpError).status ?? 400, { message: (error as Error).message });
      }
    }
    if (path === '/_control/faults' && method === 'DELETE') {
      this.clearFaults();
      return send(res, 204);
    }
    if (path === '/_control/reset' && method === 'POST') {
      this.reset();
      return send(res, 204);
    }

    const route = matchRoute(method, path);
    if (!route) return send(res, 404, { message: `no route ${method} ${path}` });
    await this.operation(route.operation, route.id, req, res, body);
  }

  /** One recorded call of the provider's API: latency, idempotency, injected failures, the effect. */
  private async operation(
    operation: ProviderOperation,
    id: string | undefined,
    req: IncomingMessage,
    res: ServerResponse,
    body: Record<string, unknown>,
  ): Promise<void> {
    const started = Date.now();
    const key = header(req, 'idempotency-key');
    const target = id ? (this.databases.get(id) ?? this.dnsRecords.get(id)) : undefined;
    const tenantId = str(body.tenantId) ?? target?.tenantId ?? null;
    const tenantName = str(body.tenantName) ?? target?.tenantName ?? null;
    const call: ProviderCall = {
      seq: ++this.seq,
      at: new Date(started).toISOString(),
      operation,
      method: req.method ?? '',
      path: req.url ?? '',
      tenantId,
      tenantName,
      idempotencyKey: key ?? null,
      status: 0,
      outcome: '',
      resourceId: id ?? null,
      durationMs: 0,
    };
    this.calls.push(call);
    const reply = (status: number, outcome: string, payload?: unknown) => {
      call.status = status;
      call.outcome = outcome;
      call.durationMs = Date.now() - started;
      send(res, status, payload);
    };

    await sleep(this.pickLatency());

    const isCreate =
      operation === 'createDatabase' || operation === 'createDnsRecord' || operation === 'sendEmail';
    if (isCreate && !key)
      return reply(400, 'rejected', { message: 'Idempotency-Key header is required for creates' });
    if (isCreate) {
      const invalid = validate(operation, body);
      if (invalid) return reply(422, 'rejected', { message: invalid });
    }

    const fault = this.takeFault(operation, tenantName);
    if (fault && fault.when === 'before') {
      call.injected = 'before';
      return reply(fault.status, fault.status >= 500 ? 'injected_failure' : 'rejected', {
        message:
          fault.status >= 500 ? 'service unavailable (injected)' : `refused (injected ${fault.status})`,
      });
    }

    let status: number;
    let payload: unknown;
    let outcome: string;
    if (isCreate) {
      const fingerprint = JSON.stringify([operation, body]);
      const stored = this.keys.get(key!);
      if (stored) {
        if (stored.fingerprint !== fingerprint)
          return reply(422, 'rejected', {
            message: `Idempotency-Key ${key} was used with another request (${stored.operation})`,
          });
        call.resourceId = stored.resourceId;
        ({ status, body: payload } = stored);
        outcome = 'replayed';
      } else {
        if (this.inFlight.has(key!))
          return reply(409, 'in_progress', {
            message: `a request with Idempotency-Key ${key} is in progress`,
          });
        this.inFlight.add(key!);
        try {
          const created = this.create(operation, body);
          status = operation === 'sendEmail' ? 202 : 201;
          payload = created;
          call.resourceId = created.id;
          this.keys.set(key!, { operation, fingerprint, status, body: created, resourceId: created.id });
          outcome = operation === 'sendEmail' ? 'sent' : 'created';
        } finally {
          this.inFlight.delete(key!);
        }
      }
    } else {
      const deleted = this.remove(operation, id!);
      status = deleted ? 204 : 404;
      outcome = deleted ? 'deleted' : 'not_found';
      payload = deleted ? undefined : { message: `no resource ${id}` };
    }

    if (fault && fault.when === 'after') {
      call.injected = 'after';
      call.outcome = `${outcome}+lost_response`;
      call.status = fault.status;
      call.durationMs = Date.now() - started;
      return send(res, fault.status, { message: 'gateway timeout (injected after the effect)' });
    }
    reply(status, outcome, payload);
  }

  private create(operation: ProviderOperation, body: Record<string, unknown>): { id: string } {
    const now = new Date().toISOString();
    const tenantId = String(body.tenantId);
    const tenantName = String(body.tenantName);
    if (operation === 'createDatabase') {
      const id = `db_${randomUUID().slice(0, 12)}`;
      const database: FakeDatabase = {
        id,
        tenantId,
        tenantName,
        plan: String(body.plan),
        region: String(body.region),
        host: `${id}.${String(body.region)}.db.fake-cloud.test`,
        createdAt: now,
        deletedAt: null,
      };
      this.databases.set(id, database);
      return database;
    }
    if (operation === 'createDnsRecord') {
      const id = `dns_${randomUUID().slice(0, 12)}`;
      const record: FakeDnsRecord = {
        id,
        tenantId,
        tenantName,
        fqdn: String(body.name),
        target: String(body.target),
        createdAt: now,
        deletedAt: null,
      };
      this.dnsRecords.set(id, record);
      return record;
    }
    const email: FakeEmail = {
      id: `msg_${randomUUID().slice(0, 12)}`,
      tenantId,
      tenantName,
      to: String(body.to),
      template: String(body.template),
      sentAt: now,
    };
    this.emails.push(email);
    return email;
  }

  private remove(operation: ProviderOperation, id: string): boolean {
    const store: Map<string, { deletedAt: string | null }> =
      operation === 'deleteDatabase' ? this.databases : this.dnsRecords;
    const resource = store.get(id);
    if (!resource || resource.deletedAt) return false;
    resource.deletedAt = new Date().toISOString();
    return true;
  }

  private takeFault(operation: ProviderOperation, tenantName: string | null): Fault | undefined {
    const fault = this.faults.find(
      (f) =>
        f.remaining > 0 &&
        (f.operation === undefined || f.operation === operation) &&
        (f.tenantName === undefined || f.tenantName === tenantName) &&
        (f.tenantNamePrefix === undefined || (tenantName ?? '').startsWith(f.tenantNamePrefix)),
    );
    if (fault) {
      fault.remaining -= 1;
      return fault;
    }
    if (this.failureRate > 0 && this.random() < this.failureRate) {
      const isCreate =
        operation === 'createDatabase' || operation === 'createDnsRecord' || operation === 'sendEmail';
      const when = isCreate && this.random() < 0.5 ? 'after' : 'before';
      return { id: 'random', status: 503, when, remaining: 0 };
    }
    return undefined;
  }

  private pickLatency(): number {
    const [min, max] = this.latency;
    return Math.round(min + (max - min) * this.random());
  }
}

/** Reads FAKE_PROVIDER_LATENCY_MS ('120' or '50-200') and FAKE_PROVIDER_FAILURE_RATE ('0.1'). */
export function fakeProviderOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): FakeProviderOptions {
  return {
    latencyMs: parseLatency(env.FAKE_PROVIDER_LATENCY_MS ?? '20-80'),
    failureRate: parseRate(env.FAKE_PROVIDER_FAILURE_RATE ?? '0'),
  };
}

export function parseLatency(text: string): [number, number] {
  const match = /^\s*(\d+)\s*(?:-\s*(\d+))?\s*$/.exec(text);
  if (!match) throw new Error(`FAKE_PROVIDER_LATENCY_MS must be like '100' or '50-200', got '${text}'`);
  const min = Number(match[1]);
  const max = match[2] === undefined ? min : Number(match[2]);
  if (max < min) throw new Error(`FAKE_PROVIDER_LATENCY_MS: ${max} < ${min}`);
  return [min, max];
}

function parseRate(text: string): number {
  const rate = Number(text);
  if (!Number.isFinite(rate) || rate < 0 || rate > 1)
    throw new Error(`FAKE_PROVIDER_FAILURE_RATE must be a number from 0 to 1, got '${text}'`);
  return rate;
}

function matchRoute(method: string, path: string): { operation: ProviderOperation; id?: string } | undefined {
  if (method === 'POST' && path === '/databases') return { operation: 'createDatabase' };
  if (method === 'POST' && path === '/dns-records') return { operation: 'createDnsRecord' };
  if (method === 'POST' && path === '/emails') return { operation: 'sendEmail' };
  const match = /^\/(databases|dns-records)\/([^/]+)$/.exec(path);
  if (method === 'DELETE' && match) {
    return {
      operation: match[1] === 'databases' ? 'deleteDatabase' : 'deleteDnsRecord',
      id: decodeURIComponent(match[2]),
    };
  }
  return undefined;
}

function validate(operation: ProviderOperation, body: Record<string, unknown>): string | undefined {
  const required: Record<string, string[]> = {
    createDatabase: ['tenantId', 'tenantName', 'plan', 'region'],
    createDnsRecord: ['tenantId', 'tenantName', 'name', 'target'],
    sendEmail: ['tenantId', 'tenantName', 'to', 'template'],
  };
  const missing = (required[operation] ?? []).filter(
    (field) => typeof body[field] !== 'string' || !body[field],
  );
  return missing.length ? `missing fields: ${missing.join(', ')}` : undefined;
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, 'body too large');
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return {};
  try {
    const parsed: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    return parsed && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

function send(res: ServerResponse, status: number, payload?: unknown): void {
  if (payload === undefined) {
    res.writeHead(status);
    res.end();
    return;
  }
  const text = JSON.stringify(payload);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function sleep(ms: number): Promise<void> {
  return ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : Promise.resolve();
}
