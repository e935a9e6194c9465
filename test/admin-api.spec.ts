import { CanActivate, ExecutionContext, INestApplication, Injectable } from '@nestjs/common';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { Durable, DurableClient, InvalidOptionsError, Step, Workflow } from 'nest-durable';
import { DurableAdminModule } from 'nest-durable/admin';
import { createAdminApp } from './support/admin-app';
import { createTestDatabase } from './support/database';
import { waitUntil } from './support/helpers';

@Injectable()
class Ops {
  broken = true;

  @Step() async work(n: number): Promise<number> {
    return n + 1;
  }

  @Step({ retry: { maxAttempts: 1 } }) async fragile(): Promise<string> {
    if (this.broken) throw new Error('upstream said <script>alert("x")</script> & gave up');
    return 'ok';
  }

  @Workflow() async job(n: number): Promise<number> {
    return this.work(n);
  }

  @Workflow() async fails(): Promise<string> {
    await this.work(1);
    return this.fragile();
  }

  @Workflow() async waits(): Promise<unknown> {
    await Durable.waitForSignal('first');
    return Durable.waitForSignal('second');
  }

  @Workflow() async parent(): Promise<unknown> {
    await this.job(1);
    return Durable.waitForSignal('go');
  }
}

@Injectable()
class HeaderGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    return context.switchToHttp().getRequest().headers['x-admin'] === 'yes';
  }
}

describe('admin API and dashboard pages', () => {
  let database: { url: string; drop(): Promise<void> };
  let app: INestApplication;
  let client: DurableClient;
  let ops: Ops;
  let ds: DataSource;
  const http = () => request(app.getHttpServer());

  beforeAll(async () => {
    database = await createTestDatabase();
    app = await createAdminApp({
      url: database.url,
      providers: [Ops],
      admin: { path: 'ops/durable', guard: HeaderGuard },
      guards: [HeaderGuard],
    });
    client = app.get(DurableClient);
    ops = app.get(Ops);
    ds = app.get(DataSource);
    for (let i = 0; i < 5; i++) await (await client.start('job', [i], { id: `adm-ok-${i}` })).result();
    await expect((await client.start('fails', [], { id: 'adm-fail-1' })).result()).rejects.toThrow();
    await client.start('waits', [], { id: 'adm-<b>wait</b>' });
    await client.signal('adm-<b>wait</b>', 'first', { n: 1 });
    await client.signal('adm-<b>wait</b>', 'later', { n: 2 });
    await client.start('parent', [], { id: 'adm-parent' });
    await ds.query(
      `INSERT INTO durable.runs (id, workflow, version, status, input) VALUES ('adm-legacy', 'legacy', '2', 'pending', '[]')`,
    );
    await waitUntil(
      'the waiting runs to park',
      async () => {
        const rows = await ds.query(`SELECT count(*)::int AS n FROM durable.runs WHERE status = 'waiting'`);
        return rows[0].n === 2 ? true : undefined;
      },
      10_000,
    );
  });

  afterAll(async () => {
    await app?.close();
    await database?.drop();
  });

  const api = (path: string) => http().get(`/ops/durable/api${path}`).set('x-admin', 'yes');
  const ids = (body: { runs: { id: string }[] }) => body.runs.map((run) => run.id);

  it('lists runs newest first with indexed filters', async () => {
    expect(ids((await api('/runs?status=failed').expect(200)).body)).toEqual(['adm-fail-1']);
    expect(ids((await api('/runs?errorText=SCRIPT').expect(200)).body)).toEqual(['adm-fail-1']);
    expect(ids((await api('/runs?idPrefix=adm-ok-&limit=500').expect(200)).body)).toEqual([
      'adm-ok-4',
      'adm-ok-3',
      'adm-ok-2',
      'adm-ok-1',
      'adm-ok-0',
    ]);
    expect(ids((await api('/runs?idPrefix=adm-%25').expect(200)).body)).toEqual([]); // % is literal
    expect(ids((await api('/runs?version=2').expect(200)).body)).toEqual(['adm-legacy']);
    expect(ids((await api('/runs?workflow=job&status=succeeded,failed').expect(200)).body)).toHaveLength(6);
    const future = new Date(Date.now() + 60_000).toISOString();
    expect(ids((await api(`/runs?createdAfter=${future}`).expect(200)).body)).toEqual([]);
    expect(
      (await api(`/runs?createdBefore=${future}&limit=500`).expect(200)).body.runs.length,
    ).toBeGreaterThan(8);
    const failed = (await api('/runs?status=failed').expect(200)).body.runs[0];
    expect(failed.error).toEqual({ name: 'Error', message: expect.stringContaining('<script>') });
    expect(failed).not.toHaveProperty('input');
  });

  it('pages with a keyset cursor: every run once, in order', async () => {
    const seen: string[] = [];
    let after: string | undefined;
    do {
      const body = (
        await api(`/runs?limit=2${after ? `&after=${encodeURIComponent(after)}` : ''}`).expect(200)
      ).body;
      seen.push(...ids(body));
      after = body.next;
    } while (after);
    const all = ids((await api('/runs?limit=500').expect(200)).body);
    expect(seen).toEqual(all);
    expect(new Set(seen).size).toBe(seen.length);
  });

  it('answers bad filters with 400 and a typed code', async () => {
    const bad = await api('/runs?status=exploded').expect(400);
    expect(bad.body.code).toBe('DURABLE_INVALID_ARGUMENT');
    await api('/runs?after=garbage').expect(400);
    await api('/runs?limit=100000').expect(400);
    await api('/runs?createdAfter=yesterday').expect(400);
  });

  it('shows a run with steps, signals (pending and consumed), parent and children', async () => {
    const run = (await api(`/runs/${encodeURIComponent('adm-<b>wait</b>')}`).expect(200)).body;
    expect(run.status).toBe('waiting');
    expect(run.waitingFor).toEqual(['second']);
    expect(run.steps.map((s: { key: string; status: string }) => [s.key, s.status])).toEqual([
      ['$signal:first#1', 'succeeded'],
      ['$signal:second#1', 'waiting'],
    ]);
    expect(
      run.signals.map((s: { name: string; consumedBy: string | null }) => [s.name, s.consumedBy]),
    ).toEqual([
      ['first', '$signal:first#1'],
      ['later', null],
    ]);
    const parent = (await api('/runs/adm-parent').expect(200)).body;
    expect(parent.children).toHaveLength(1);
    const child = (await api(`/runs/${encodeURIComponent(parent.children[0].id)}`).expect(200)).body;
    expect(child.parent.id).toBe('adm-parent');
    await api('/runs/nope').expect(404);
  });

  it('counts runs per status', async () => {
    const { counts } = (await api('/counts').expect(200)).body;
    expect(counts).toMatchObject({ failed: 1, waiting: 2, pending: 1 });
    expect(counts.succeeded).toBeGreaterThanOrEqual(6);
  });

  it('acts: resume, signal, fork and cancel, with typed errors for the wrong state', async () => {
    await http().post('/ops/durable/api/runs/adm-ok-0/resume').set('x-admin', 'yes').expect(409);
    ops.broken = false;
    await http().post('/ops/durable/api/runs/adm-fail-1/resume').set('x-admin', 'yes').expect(200);
    await expect(client.handle('adm-fail-1').result({ timeout: '10s' })).resolves.toBe('ok');

    const forked = await http()
      .post('/ops/durable/api/runs/adm-fail-1/fork')
      .set('x-admin', 'yes')
      .send({ fromStep: 'fragile#1', id: 'adm-fork-1' })
      .expect(201);
    expect(forked.body).toEqual({ id: 'adm-fork-1' });
    await expect(client.handle('adm-fork-1').result({ timeout: '10s' })).resolves.toBe('ok');

    await http()
      .post(`/ops/durable/api/runs/${encodeURIComponent('adm-<b>wait</b>')}/signal`)
      .set('x-admin', 'yes')
      .send({ name: 'second', payload: { done: true } })
      .expect(200);
    await expect(client.handle('adm-<b>wait</b>').result({ timeout: '10s' })).resolves.toEqual({
      done: true,
    });

    const cancelled = await http()
      .post('/ops/durable/api/runs/adm-parent/cancel')
      .set('x-admin', 'yes')
      .send({ reason: 'test over' })
      .expect(200);
    expect(cancelled.body).toEqual({ cancelled: true });
    await http().post('/ops/durable/api/runs/nope/cancel').set('x-admin', 'yes').expect(404);
  });

  it('every route is behind the app guard', async () => {
    await http().get('/ops/durable/api/runs').expect(403);
    await http().get('/ops/durable').expect(403);
    await http().get('/ops/durable/api/runs/adm-ok-1').expect(403);
    await http().post('/ops/durable/api/runs/adm-ok-1/resume').expect(403);
    await http().get('/ops/durable/api/events').expect(403);
  });

  it('refuses cross-site requests that change runs', async () => {
    await http()
      .post('/ops/durable/api/runs/adm-ok-1/cancel')
      .set('x-admin', 'yes')
      .set('sec-fetch-site', 'cross-site')
      .expect(403);
    await http()
      .post('/ops/durable/runs/adm-ok-1/cancel')
      .set('x-admin', 'yes')
      .set('origin', 'https://evil.example')
      .expect(403);
  });

  it('renders pages with every user value escaped and a strict CSP', async () => {
    const list = await http()
      .get('/ops/durable?status=failed,succeeded&errorText=script')
      .set('x-admin', 'yes');
    expect(list.status).toBe(200);
    expect(list.headers['content-security-policy']).toContain("script-src 'self'");
    expect(list.text).not.toContain('<script>alert');
    const page = await http()
      .get(`/ops/durable/runs/${encodeURIComponent('adm-<b>wait</b>')}`)
      .set('x-admin', 'yes')
      .expect(200);
    expect(page.text).toContain('adm-&lt;b&gt;wait&lt;/b&gt;');
    expect(page.text).not.toContain('<b>wait</b>');
    expect(page.text).toContain('action="/ops/durable/runs/adm-%3Cb%3Ewait%3C%2Fb%3E/fork"');
    const failedPage = await http().get('/ops/durable/runs/adm-fork-1').set('x-admin', 'yes').expect(200);
    expect(failedPage.text).toContain('fragile#1');
    const script = await http().get('/ops/durable/assets/dashboard.js').set('x-admin', 'yes').expect(200);
    expect(script.headers['content-type']).toContain('javascript');
  });

  it('form actions redirect to the run page; errors show on it', async () => {
    const done = await http()
      .post('/ops/durable/runs/adm-ok-2/fork')
      .set('x-admin', 'yes')
      .type('form')
      .send({ fromStep: 'work#1', id: 'adm-fork-2' })
      .expect(303);
    expect(done.headers.location).toBe('/ops/durable/runs/adm-fork-2?done=forked');
    const refused = await http()
      .post('/ops/durable/runs/adm-ok-2/resume')
      .set('x-admin', 'yes')
      .type('form')
      .send({});
    expect(refused.status).toBe(409);
    expect(refused.text).toContain('Cannot resume run');
  });

  it('streams counts as server-sent events', async () => {
    const { port } = app.getHttpServer().address() as AddressInfo;
    const controller = new AbortController();
    const response = await fetch(`http://127.0.0.1:${port}/ops/durable/api/events`, {
      headers: { 'x-admin': 'yes' },
      signal: controller.signal,
    });
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    const reader = response.body!.getReader();
    let text = '';
    while (!text.includes('\n\n')) text += new TextDecoder().decode((await reader.read()).value);
    controller.abort();
    const data = JSON.parse(/data: (.*)/.exec(text)![1]);
    expect(data.counts.failed).toBeGreaterThanOrEqual(0);
    expect(data.cap).toBe(10_000);
  });

  it('refuses to start without a guard in production unless told', () => {
    const previous = process.env.NODE_ENV;
    process.env.NODE_ENV = 'production';
    try {
      expect(() => DurableAdminModule.forRoot({})).toThrow(InvalidOptionsError);
      expect(() => DurableAdminModule.forRoot({ allowUnguarded: true })).not.toThrow();
      expect(() => DurableAdminModule.forRoot({ guard: HeaderGuard })).not.toThrow();
      expect(() => DurableAdminModule.forRoot({ guard: HeaderGuard, path: '../x' })).toThrow(
        InvalidOptionsError,
      );
    } finally {
      process.env.NODE_ENV = previous;
    }
  });

  it('searches error text in bounded windows: a page may be short, and next goes on', async () => {
    await ds.query(`
      INSERT INTO durable.runs (id, workflow, version, status, input, error, created_at, updated_at)
      SELECT 'bulk-err-' || g, 'bulk', '1', 'failed', '[]',
        jsonb_build_object('name', 'Error', 'message', CASE WHEN g = 25000 THEN 'a needle in the stack' ELSE 'hay' END),
        now() - interval '1 day' - g * interval '1 second', now() - interval '1 day'
      FROM generate_series(1, 25000) g`);
    const pages: string[][] = [];
    let after: string | undefined;
    do {
      const query = `/runs?errorText=needle${after ? `&after=${encodeURIComponent(after)}` : ''}`;
      const body = (await api(query).expect(200)).body;
      pages.push(ids(body));
      after = body.next;
    } while (after);
    // Windows of 10,000 errored runs: the first two hold no match, the third ends with it.
    expect(pages).toEqual([[], [], ['bulk-err-25000']]);
    const hay = (await api('/runs?errorText=hay&limit=3').expect(200)).body;
    expect(ids(hay)).toEqual(['bulk-err-1', 'bulk-err-2', 'bulk-err-3']);
    expect(hay.next).toBeDefined();
  });
});
