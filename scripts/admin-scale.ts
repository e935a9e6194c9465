// Measures the admin API and dashboard with 1,000,000 runs: creates a scratch database, fills it with
// generate_series, boots an app with DurableAdminModule (worker: false), times each endpoint, then
// drops the database. Usage:
//   node -r @swc-node/register scripts/admin-scale.ts [--runs 1000000] [--admin-url postgres://postgres@127.0.0.1:5432/postgres]
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ScheduleModule } from '@nestjs/schedule';
import { TypeOrmModule } from '@nestjs/typeorm';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Client } from 'pg';
import { DurableModule, durableMigrations } from 'nest-durable';
import { DurableAdminModule } from 'nest-durable/admin';

const argv = process.argv.slice(2);
const arg = (name: string, fallback: string) => {
  const at = argv.indexOf(`--${name}`);
  return at >= 0 ? argv[at + 1] : fallback;
};
const RUNS = Number(arg('runs', '1000000'));
const ADMIN_URL = arg(
  'admin-url',
  process.env.ADMIN_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
);
const REPEAT = 15;

async function sql(url: string, text: string, params: unknown[] = []) {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text, params)).rows;
  } finally {
    await client.end();
  }
}

async function main(): Promise<void> {
  const name = `durable_admin_scale_${randomBytes(4).toString('hex')}`;
  await sql(ADMIN_URL, `CREATE DATABASE "${name}"`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  const dbUrl = url.toString();
  try {
    await measure(dbUrl);
  } finally {
    await sql(ADMIN_URL, `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    console.log(`dropped ${name}`);
  }
}

async function fill(dbUrl: string): Promise<void> {
  const started = Date.now();
  // 90% succeeded, 5% failed, 2% cancelled, 1% each pending/sleeping/waiting; 5 workflows, 2 versions,
  // creation spread over 30 days; failed runs carry one of 20 error messages.
  await sql(
    dbUrl,
    `INSERT INTO durable.runs (id, workflow, version, status, input, output, error, attempts, created_at, updated_at,
       available_at)
     SELECT md5(g::text)::uuid::text,
       (ARRAY['provisionTenant','sendInvoice','syncCatalog','chargeCard','exportReport'])[1 + g % 5],
       CASE WHEN g % 10 = 0 THEN '2' ELSE '1' END,
       s.status, jsonb_build_array(jsonb_build_object('tenantId', g)),
       CASE WHEN s.status = 'succeeded' THEN '{"ok":true}'::jsonb END,
       CASE WHEN s.status IN ('failed','cancelled') THEN jsonb_build_object('name', 'Error',
         'message', 'upstream ' || (ARRAY['timeout','refused','quota exceeded','card declined','dns failure'])[1 + g % 5]
           || ' on shard ' || (g % 20), 'stack', 'Error: upstream failure\n    at step (app.js:1:1)') END,
       1, t.created, t.created + interval '2 seconds', t.created
     FROM generate_series(1, $1::int) g,
       LATERAL (SELECT now() - (g::float / $1::int) * interval '30 days' AS created) t,
       LATERAL (SELECT CASE WHEN g % 100 < 90 THEN 'succeeded' WHEN g % 100 < 95 THEN 'failed'
         WHEN g % 100 < 97 THEN 'cancelled' WHEN g % 100 = 97 THEN 'pending' WHEN g % 100 = 98 THEN 'sleeping'
         ELSE 'waiting' END AS status) s`,
    [RUNS],
  );
  // Three steps for each of the newest 100,000 runs (the run page reads a run's steps by primary key).
  await sql(
    dbUrl,
    `INSERT INTO durable.steps (run_id, key, name, kind, status, output, attempts, started_at, finished_at)
     SELECT r.id, n || '#1', n, 'step', 'succeeded', '{"v":1}', 1, r.created_at, r.created_at + interval '1 second'
     FROM (SELECT id, created_at FROM durable.runs ORDER BY created_at DESC LIMIT 100000) r,
       unnest(ARRAY['reserve','create','notify']) n`,
  );
  await sql(dbUrl, 'VACUUM ANALYZE durable.runs');
  await sql(dbUrl, 'VACUUM ANALYZE durable.steps');
  const [{ runs, steps }] = await sql(
    dbUrl,
    `SELECT (SELECT count(*) FROM durable.runs)::int AS runs, (SELECT count(*) FROM durable.steps)::int AS steps`,
  );
  console.log(`filled ${runs} runs and ${steps} steps in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

async function measure(dbUrl: string): Promise<void> {
  @Module({
    imports: [
      TypeOrmModule.forRoot({
        type: 'postgres',
        url: dbUrl,
        migrations: durableMigrations(),
        migrationsRun: true,
      }),
      ScheduleModule.forRoot(),
      DurableModule.forRoot({ worker: false }),
      DurableAdminModule.forRoot({ allowUnguarded: true }),
    ],
  })
  class ScaleModule {}
  const app = await NestFactory.create(ScaleModule, { logger: ['error'] });
  await app.listen(0, '127.0.0.1');
  try {
    await fill(dbUrl);
    const { port } = app.getHttpServer().address() as AddressInfo;
    const base = `http://127.0.0.1:${port}/durable`;
    const [{ id: newest }] = await sql(dbUrl, `SELECT id FROM durable.runs ORDER BY created_at DESC LIMIT 1`);
    const [{ id: failed }] = await sql(dbUrl, `SELECT id FROM durable.runs WHERE status = 'failed' LIMIT 1`);
    const dayAgo = new Date(Date.now() - 86_400_000).toISOString();
    const twoDaysAgo = new Date(Date.now() - 2 * 86_400_000).toISOString();
    let deepCursor = '';
    {
      let next: string | undefined;
      for (let page = 0; page < 100; page++) {
        const body = (await (
          await fetch(`${base}/api/runs?limit=50${next ? `&after=${next}` : ''}`)
        ).json()) as {
          next?: string;
        };
        next = body.next;
      }
      deepCursor = next!;
    }
    const cases: [string, string][] = [
      ['counts per status (capped at 10,000)', '/api/counts'],
      ['list, no filter (page 1, 50 runs)', '/api/runs'],
      ['list, page 101 by cursor', `/api/runs?after=${deepCursor}`],
      ['list, status=failed', '/api/runs?status=failed'],
      ['list, status=failed,cancelled + workflow', '/api/runs?status=failed,cancelled&workflow=chargeCard'],
      ['list, workflow + version=2', '/api/runs?workflow=provisionTenant&version=2'],
      ['list, version=2 alone', '/api/runs?version=2'],
      ['list, id prefix (3 chars)', `/api/runs?idPrefix=${newest.slice(0, 3)}`],
      ['list, id prefix (8 chars)', `/api/runs?idPrefix=${newest.slice(0, 8)}`],
      ['list, created in a 1-day range', `/api/runs?createdAfter=${twoDaysAgo}&createdBefore=${dayAgo}`],
      ['list, error text (common: "timeout")', '/api/runs?errorText=timeout'],
      ['list, error text (rare: "shard 7")', '/api/runs?errorText=shard%207'],
      ['list, error text (no match)', '/api/runs?errorText=no-such-text'],
      ['run detail (JSON)', `/api/runs/${newest}`],
      ['dashboard page (counts + list)', ''],
      ['dashboard page, status=failed + error text', '?status=failed&errorText=refused'],
      ['run page (HTML)', `/runs/${failed}`],
    ];
    console.log(`\n| endpoint | median ms | p95 ms | rows |\n| --- | --- | --- | --- |`);
    for (const [label, path] of cases) {
      const times: number[] = [];
      let rows = 0;
      for (let i = 0; i < REPEAT; i++) {
        const started = performance.now();
        const response = await fetch(`${base}${path}`);
        const text = await response.text();
        times.push(performance.now() - started);
        if (!response.ok) throw new Error(`${path}: ${response.status} ${text.slice(0, 200)}`);
        if (path.startsWith('/api/runs') && !path.startsWith('/api/runs/'))
          rows = JSON.parse(text).runs.length;
      }
      times.sort((a, b) => a - b);
      const p = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))].toFixed(1);
      console.log(
        `| ${label} | ${p(0.5)} | ${p(0.95)} | ${path.startsWith('/api/runs') && !path.startsWith('/api/runs/') ? rows : ''} |`,
      );
    }
  } finally {
    await app.close();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
