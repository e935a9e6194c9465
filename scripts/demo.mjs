// `npm run demo`: the provisioning app under a crash, end to end, in under a minute.
//
//   1. PostgreSQL: a fresh throwaway one (DATABASE_URL when set: a new database on it), or with
//      --persistent the embedded cluster in .data/demo-postgres, kept afterwards.
//   2. The fake cloud provider in a process of its own (it survives the app's crash), with latency and
//      a 15% failure rate; it refuses DNS records for tenants named "Doomed ..." (they compensate).
//   3. The app as a child process; a few dozen tenants of mixed plans are created over HTTP.
//   4. SIGKILL of the app mid-flight, a restart with the same executor id (it resumes its runs at once).
//   5. The enterprise tenants are approved (one rejected, one cancelled) while the progress shows live,
//      read from each tenant's server-sent events (GET /tenants/:id/events), not by polling: a
//      refreshing table on a terminal, a line every 2 s otherwise.
//   6. A summary: tenants active / failed (compensated) / cancelled, steps executed vs replayed,
//      calls the provider saw per tenant. The app's logs are in .data/demo/.
//
// Options: --persistent, --tenants N (default 36), --no-crash.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createDatabase, dropDatabase, startPostgres } from './postgres.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const PERSISTENT = args.includes('--persistent');
const CRASH = !args.includes('--no-crash');
const TENANTS = Number(args[args.indexOf('--tenants') + 1] ?? 36) || 36;
const TTY = Boolean(process.stdout.isTTY) && !process.env.CI;
const LOG_DIR = path.join(root, '.data', 'demo');
const SETTLE_TIMEOUT_MS = 45_000;
const EXECUTOR_ID = 'provisioning-demo';

const c = TTY
  ? {
      dim: (s) => `\x1b[2m${s}\x1b[22m`,
      bold: (s) => `\x1b[1m${s}\x1b[22m`,
      red: (s) => `\x1b[31m${s}\x1b[39m`,
      green: (s) => `\x1b[32m${s}\x1b[39m`,
      yellow: (s) => `\x1b[33m${s}\x1b[39m`,
      magenta: (s) => `\x1b[35m${s}\x1b[39m`,
      cyan: (s) => `\x1b[36m${s}\x1b[39m`,
    }
  : Object.fromEntries(
      ['dim', 'bold', 'red', 'green', 'yellow', 'magenta', 'cyan'].map((k) => [k, (s) => s]),
    );

const STATUS = {
  provisioning: { mark: '…', color: c.yellow },
  awaiting_approval: { mark: '?', color: c.magenta },
  compensating: { mark: '↺', color: c.cyan },
  active: { mark: '✓', color: c.green },
  failed: { mark: '✗', color: c.red },
  cancelled: { mark: '⊘', color: c.dim },
};
const SETTLED = new Set(['active', 'failed', 'cancelled']);

const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)}s`;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ------------------------------------------------------------------------------------------------
// processes

const children = new Set();
let postgres;
let dropAtExit;
let cleaningUp = false;

async function cleanup() {
  if (cleaningUp) return;
  cleaningUp = true;
  for (const child of children) child.kill('SIGTERM');
  await Promise.race([Promise.all([...children].map((child) => child.exited)), sleep(8_000)]);
  for (const child of children) child.kill('SIGKILL');
  await dropAtExit?.().catch((error) => console.error(`could not drop the demo database: ${error.message}`));
  await postgres?.stop();
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    if (TTY) process.stdout.write('\x1b[?25h');
    console.log(`\n${signal}: stopping the demo...`);
    void cleanup().then(() => process.exit(130));
  });
}

/** Runs a TypeScript entry of the repo; collects its lines into a log file and hands them to `onLine`. */
function spawnTs(entry, { env, logName, onLine }) {
  fs.mkdirSync(LOG_DIR, { recursive: true });
  const log = fs.createWriteStream(path.join(LOG_DIR, `${logName}.log`));
  const child = spawn(process.execPath, ['-r', '@swc-node/register', path.join(root, entry)], {
    cwd: root,
    env: { ...process.env, SWC_NODE_PROJECT: path.join(root, 'tsconfig.json'), NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.exited = new Promise((resolve) =>
    child.once('close', (code, signal) => {
      children.delete(child);
      log.end();
      resolve({ code, signal });
    }),
  );
  for (const stream of [child.stdout, child.stderr]) {
    readline.createInterface({ input: stream }).on('line', (line) => {
      log.write(`${line}\n`);
      onLine?.(line, Date.now());
    });
  }
  return child;
}

function waitForLine(child, pattern, what, timeoutMs = 45_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${what} did not start within ${timeoutMs} ms`)),
      timeoutMs,
    );
    child.waiters = [
      ...(child.waiters ?? []),
      { pattern, resolve: (m) => (clearTimeout(timer), resolve(m)) },
    ];
    child.exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (code ${code}, signal ${signal}); see ${LOG_DIR}`));
    });
  });
}

function matchWaiters(child, line) {
  for (const waiter of child.waiters ?? []) {
    const match = waiter.pattern.exec(line);
    if (match) {
      child.waiters = child.waiters.filter((w) => w !== waiter);
      waiter.resolve(match);
    }
  }
}

// ------------------------------------------------------------------------------------------------
// what the app prints (parsed to count executed and replayed steps)

const bodyStarts = new Map(); // run id -> [{ at, life }]
const executions = []; // { run, key, attempt, life }
let life = 0;
/** What the restarted app logged: the runs it returned to the queue at startup. */
let recoveredAtRestart;
/** What the database held at the SIGKILL: the unfinished runs, and how many were executing. */
let crash;

function onAppLine(child, line, at) {
  matchWaiters(child, line);
  let m = /\[Provisioning\] body run=(\S+)/.exec(line);
  if (m) {
    const list = bodyStarts.get(m[1]) ?? [];
    list.push({ at, life });
    bodyStarts.set(m[1], list);
    return;
  }
  m = /Recovered (\d+) interrupted run/.exec(line);
  if (m && life === 2) recoveredAtRestart = Number(m[1]);
  m = /\[Provisioning\] exec (\S+) attempt=(\d+) run=(\S+)/.exec(line);
  if (m) executions.push({ key: m[1], attempt: Number(m[2]), run: m[3], life });
  if (/\bERROR\b/.test(line) && !TTY) console.log(c.red(`  app: ${line.replace(/^.*ERROR\s*/, '')}`));
}

async function startApp(env) {
  life += 1;
  const child = spawnTs('apps/provisioning/src/main.ts', {
    env,
    logName: `app-life${life}`,
    onLine: (line, at) => onAppLine(child, line, at),
  });
  const match = await waitForLine(child, /Provisioning API listening on (http:\/\/\S+)/, 'the app');
  return { child, url: match[1] };
}

// ------------------------------------------------------------------------------------------------
// HTTP

async function http(url, { method = 'GET', json, headers = {} } = {}) {
  const response = await fetch(url, {
    method,
    headers: json === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: json === undefined ? undefined : JSON.stringify(json),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

async function pool(items, size, fn) {
  const queue = [...items];
  await Promise.all(
    Array.from({ length: size }, async () => {
      while (queue.length) await fn(queue.shift());
    }),
  );
}

/**
 * Follows a tenant's progress stream until its tenant is settled: `progress` events set it
 * provisioning or awaiting_approval, `finished` gives the tenant's status. Reconnects (with
 * Last-Event-ID) when the stream breaks, e.g. across the app's crash and restart; a tenant whose run
 * ended before its undos settled it (a cancel) is read again until it settles.
 */
async function follow(t, url, statuses) {
  let lastId = '';
  while (!cleaningUp && !SETTLED.has(statuses.get(t.id))) {
    try {
      const response = await fetch(`${url()}/tenants/${t.id}/events`, {
        headers: lastId ? { 'last-event-id': lastId } : {},
      });
      if (!response.ok) throw new Error(`events answered ${response.status}`);
      let buffer = '';
      const decoder = new TextDecoder();
      for await (const chunk of response.body) {
        buffer += decoder.decode(chunk, { stream: true });
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const field = (name) => block.match(new RegExp(`^${name}: ?(.*)$`, 'm'))?.[1];
          const data = JSON.parse(field('data') ?? 'null');
          lastId = field('id') ?? lastId;
          if (field('event') === 'progress') {
            statuses.set(t.id, data.stage === 'awaiting approval' ? 'awaiting_approval' : 'provisioning');
          } else if (field('event') === 'finished') {
            statuses.set(t.id, data.tenant);
          }
        }
      }
      if (!SETTLED.has(statuses.get(t.id))) {
        // The run ended but its undos still settle the tenant (a cancel): read it until they have.
        await sleep(250);
        const view = await http(`${url()}/tenants/${t.id}`);
        if (view.status === 200) statuses.set(t.id, view.body.tenant.status);
      }
    } catch {
      await sleep(200); // the app is down (the crash) or restarting: try again
    }
  }
}

// ------------------------------------------------------------------------------------------------
// the tenants of the demo

const COMPANIES = [
  'Acme',
  'Globex',
  'Initech',
  'Umbrella',
  'Hooli',
  'Stark',
  'Wayne',
  'Wonka',
  'Tyrell',
  'Cyberdyne',
  'Soylent',
  'Aperture',
  'Vandelay',
  'Pied Piper',
  'Dunder',
  'Massive',
  'Oscorp',
  'Gringotts',
  'Monarch',
  'Nakatomi',
  'Prestige',
  'Sirius',
  'Virtucon',
  'Weyland',
  'Zorg',
  'Bluth',
  'Krusty',
  'Ollivander',
  'Paper Street',
  'Rekall',
  'Spacely',
  'Cogswell',
  'Duff',
  'Gekko',
  'Lacuna',
  'Nimbus',
  'Omni',
  'Planet',
  'Quark',
  'Rich',
  'Slate',
  'Tessier',
  'Veidt',
  'Wolfram',
  'Xanatos',
  'Yoyodyne',
  'Zenith',
  'Ajax',
];
const REGIONS = ['eu-west-1', 'us-east-1', 'ap-south-1'];

function demoTenants(count, label) {
  const enterprise = Math.max(3, Math.round(count / 5));
  const doomed = Math.max(2, Math.round(count / 12));
  const kinds = Array.from({ length: count }, (_, i) =>
    i < enterprise ? 'enterprise' : i < enterprise + doomed ? 'doomed' : i % 2 ? 'free' : 'pro',
  );
  // Spread the kinds over the list (a stride coprime with the count visits every index once).
  let stride = 7;
  while (gcd(stride, count) !== 1) stride += 1;
  const list = [];
  for (let i = 0; i < count; i++) {
    const kind = kinds[(i * stride) % count];
    const base = `${COMPANIES[i % COMPANIES.length]}${i >= COMPANIES.length ? ` ${Math.floor(i / COMPANIES.length) + 1}` : ''}`;
    const name = kind === 'doomed' ? `Doomed ${base}` : base;
    list.push({
      name,
      plan: kind === 'doomed' ? (i % 2 ? 'free' : 'pro') : kind,
      region: REGIONS[i % REGIONS.length],
      adminEmail: `admin@${base.toLowerCase().replace(/[^a-z0-9]+/g, '-')}.example.test`,
      key: `demo-${label}-${i}`,
    });
  }
  // Of the enterprise tenants, the last is rejected and the one before is cancelled; the others approved.
  const enterpriseTenants = list.filter((t) => t.plan === 'enterprise');
  enterpriseTenants[enterpriseTenants.length - 1].decision = 'reject';
  enterpriseTenants[enterpriseTenants.length - 2].decision = 'cancel';
  return list;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function gcd(a, b) {
  return b === 0 ? a : gcd(b, a % b);
}

// ------------------------------------------------------------------------------------------------
// live progress

let phase = 'starting';
let drawnLines = 0;
let lastPlainLine = 0;
const events = [];
/** The crash's lines (the kill, the restart) stay on screen to the end; other events scroll. */
const pinned = [];

function note(message, { pin = false } = {}) {
  (pin ? pinned : events).push(`${elapsed().padStart(6)}  ${message}`);
  if (!TTY) console.log(`[${elapsed()}] ${message}`);
}

function render(tenants, statuses, { force = false } = {}) {
  const counts = {};
  for (const t of tenants) {
    const status = statuses.get(t.id) ?? 'provisioning';
    counts[status] = (counts[status] ?? 0) + 1;
  }
  const settled = tenants.filter((t) => SETTLED.has(statuses.get(t.id))).length;
  const summary = Object.keys(STATUS)
    .filter((s) => counts[s])
    .map((s) => STATUS[s].color(`${STATUS[s].mark} ${s} ${counts[s]}`))
    .join('  ');
  if (!TTY) {
    if (force || Date.now() - lastPlainLine >= 2_000) {
      lastPlainLine = Date.now();
      console.log(
        `[${elapsed()}] ${phase}: settled ${settled}/${tenants.length} | ${summary.replaceAll(/[…?↺✓✗⊘] /g, '')}`,
      );
    }
    return;
  }
  const width = 30;
  const filled = Math.round((settled / Math.max(1, tenants.length)) * width);
  const bar = `${c.green('█'.repeat(filled))}${c.dim('░'.repeat(width - filled))}`;
  const lines = [
    `${c.bold('Provisioning demo')}  ${c.dim(elapsed())}  ${phase}`,
    `${bar} ${settled}/${tenants.length} settled   ${summary}`,
    '',
  ];
  const columns = 3;
  const cell = (t) => {
    const status = statuses.get(t.id) ?? 'provisioning';
    const { mark, color } = STATUS[status] ?? STATUS.provisioning;
    return color(`${mark} ${t.name.slice(0, 17).padEnd(17)} ${t.plan.slice(0, 3)}`) + '  ';
  };
  for (let i = 0; i < tenants.length; i += columns)
    lines.push(
      tenants
        .slice(i, i + columns)
        .map(cell)
        .join(''),
    );
  lines.push('', ...pinned, ...events.slice(-6).map((e) => c.dim(e)));
  const out = (drawnLines ? `\x1b[${drawnLines}F` : '') + lines.map((l) => `\x1b[2K${l}`).join('\n') + '\n';
  process.stdout.write(out);
  drawnLines = lines.length;
}

// ------------------------------------------------------------------------------------------------

async function main() {
  if (TTY) process.stdout.write('\x1b[?25l');
  console.log(c.bold('nest-durable demo: tenant provisioning through a crash'));
  const label = Date.now().toString(36);

  // 1. PostgreSQL
  postgres = await startPostgres(
    PERSISTENT
      ? { dataDir: path.join(root, '.data', 'demo-postgres'), persistent: true, log: false }
      : { log: false },
  );
  let url = postgres.url;
  if (postgres.kind === 'external') {
    // DATABASE_URL: a database of our own on that server, dropped at the end unless --persistent.
    const name = `provisioning_demo_${label}`;
    url = await createDatabase(url, name);
    if (!PERSISTENT) dropAtExit = async () => dropDatabase(postgres.url, name);
  }
  console.log(
    `PostgreSQL: ${postgres.kind}${PERSISTENT ? ' (kept in .data/demo-postgres)' : ' (throwaway)'}${postgres.kind === 'external' ? `, database provisioning_demo_${label}` : ''}`,
  );
  const db = new pg.Client({ connectionString: url });
  await db.connect();

  // 2. the fake provider, in a process of its own
  const providerChild = spawnTs('apps/provisioning/src/fake-provider/fake-provider.main.ts', {
    env: { FAKE_PROVIDER_LATENCY_MS: '250-700', FAKE_PROVIDER_FAILURE_RATE: '0.15', FAKE_PROVIDER_PORT: '0' },
    logName: 'fake-provider',
    onLine: (line) => matchWaiters(providerChild, line),
  });
  const providerUrl = (
    await waitForLine(providerChild, /FAKE_PROVIDER_LISTENING (\S+)/, 'the fake provider')
  )[1];
  await http(`${providerUrl}/_control/faults`, {
    method: 'POST',
    json: { operation: 'createDnsRecord', tenantNamePrefix: 'Doomed', status: 422 },
  });
  console.log(
    `Fake provider: ${providerUrl} (latency 250-700 ms, 15% of calls fail with 503; DNS refused for "Doomed ...")`,
  );

  // 3. the app
  const appEnv = {
    DATABASE_URL: url,
    // One port for both lives of the app, so the dashboard's URL stays valid across the restart.
    PORT: String(await freePort()),
    PROVIDER_URL: providerUrl,
    EXECUTOR_ID,
    APPROVAL_TIMEOUT: '2m',
    DURABLE_POLL_INTERVAL_MS: '250',
    // Room for many demo runs on a --persistent cluster (active tenants keep their quota).
    QUOTA_FREE: '100000',
    QUOTA_PRO: '100000',
    QUOTA_ENTERPRISE: '100000',
  };
  let app = await startApp(appEnv);
  console.log(`App: ${app.url} (pid ${app.child.pid}); logs in ${path.relative(root, LOG_DIR)}/`);
  console.log(
    `Dashboard: ${c.bold(`${app.url}/durable`)} (runs, steps, errors; open it while the demo runs)\n`,
  );

  const tenants = demoTenants(TENANTS, label);
  const statuses = new Map();
  const byId = new Map();
  phase = 'creating tenants';
  await pool(tenants, 6, async (t) => {
    const res = await http(`${app.url}/tenants`, {
      method: 'POST',
      headers: { 'idempotency-key': t.key },
      json: { name: t.name, plan: t.plan, region: t.region, adminEmail: t.adminEmail },
    });
    if (res.status !== 202)
      throw new Error(`POST /tenants answered ${res.status}: ${JSON.stringify(res.body)}`);
    t.id = res.body.tenantId;
    t.runId = res.body.runId;
    byId.set(t.id, t);
  });
  const plans = tenants.reduce((acc, t) => ({ ...acc, [t.plan]: (acc[t.plan] ?? 0) + 1 }), {});
  note(
    `created ${tenants.length} tenants (${Object.entries(plans)
      .map(([p, n]) => `${n} ${p}`)
      .join(', ')})`,
  );

  // Live progress: one server-sent-event stream per tenant (GET /tenants/:id/events), no polling. A
  // stream cut by the crash reconnects to the restarted app and resumes after its Last-Event-ID.
  for (const t of tenants) void follow(t, () => app.url, statuses);
  const tick = async (opts) => render(tenants, statuses, opts);

  // 4. the crash
  if (CRASH) {
    phase = 'provisioning (crash ahead)';
    // Kill once about a quarter of the tenants are active: the rest are at every step of the way.
    for (const until = Date.now() + 15_000; Date.now() < until;) {
      await tick();
      if ([...statuses.values()].filter((s) => s === 'active').length >= tenants.length / 4) break;
      await sleep(150);
    }
    app.child.kill('SIGKILL');
    await app.child.exited;
    // What the database holds at the kill: the runs not finished, executing (owned) or parked/queued.
    const { rows } = await db.query(
      `SELECT id, status FROM durable.runs WHERE id = ANY($1) AND status NOT IN ('succeeded', 'failed', 'cancelled')`,
      [tenants.map((t) => t.runId)],
    );
    crash = {
      inFlight: new Set(rows.map((row) => row.id)),
      executing: rows.filter((row) => row.status === 'running').length,
    };
    phase = c.red('app killed (SIGKILL)');
    note(
      c.red(
        `SIGKILL to the app (pid ${app.child.pid}) with ${crash.inFlight.size} runs in flight ` +
          `(${crash.executing} executing, ${crash.inFlight.size - crash.executing} parked or queued)`,
      ),
      { pin: true },
    );
    await tick({ force: true });
    await sleep(800);
    phase = 'restarting the app';
    await tick({ force: true });
    app = await startApp(appEnv);
    note(
      `app restarted (pid ${app.child.pid}); executor "${EXECUTOR_ID}" recovered ${recoveredAtRestart ?? 0} ` +
        'interrupted run(s) at startup',
      { pin: true },
    );
  }

  // 5. approvals and progress until everything settles
  phase = 'provisioning';
  const decided = new Set();
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  for (;;) {
    await tick();
    for (const t of tenants) {
      if (t.plan !== 'enterprise' || decided.has(t.id) || statuses.get(t.id) !== 'awaiting_approval')
        continue;
      const action = t.decision === 'reject' ? 'reject' : t.decision === 'cancel' ? 'cancel' : 'approve';
      const json =
        action === 'cancel'
          ? { reason: 'the customer changed their mind' }
          : { by: 'ops@demo.test', ...(action === 'reject' ? { reason: 'no signed contract' } : {}) };
      const res = await http(`${app.url}/tenants/${t.id}/${action}`, { method: 'POST', json });
      t.decisionTries = (t.decisionTries ?? 0) + 1;
      // Retried on the next tick unless it went through (202) or the tenant moved on (409).
      if (res.status === 202 || res.status === 409 || t.decisionTries >= 5) decided.add(t.id);
      const verb = { approve: c.green('approved'), reject: c.red('rejected'), cancel: c.dim('cancelled') }[
        action
      ];
      note(
        res.status === 202
          ? `${verb} ${t.name}`
          : c.red(`${action} ${t.name}: ${res.status} ${JSON.stringify(res.body?.message ?? res.body)}`),
      );
    }
    const settled = tenants.every((t) => SETTLED.has(statuses.get(t.id)));
    if (settled) break;
    if (Date.now() > deadline) {
      note(c.red(`not settled after ${SETTLE_TIMEOUT_MS / 1000} s; see ${LOG_DIR}`));
      break;
    }
    await sleep(TTY ? 150 : 250);
  }
  phase = 'settled';
  await tick({ force: true });
  if (TTY) process.stdout.write('\x1b[?25h');

  // 6. summary
  await summary({ tenants, statuses, app, providerUrl, db });
  await db.end();
  await cleanup();
  const ok = tenants.every((t) => SETTLED.has(statuses.get(t.id)));
  process.exit(ok ? 0 : 1);
}

async function summary({ tenants, statuses, app, providerUrl, db }) {
  const views = new Map();
  await pool(tenants, 8, async (t) => views.set(t.id, (await http(`${app.url}/tenants/${t.id}`)).body));
  const calls = (await http(`${providerUrl}/calls`)).body.calls;
  const resources = (await http(`${providerUrl}/resources`)).body;

  // Replays: each re-execution of a run's body (recovery, wake-up after the approval) replays the steps
  // recorded before it; executions: the step bodies that ran (the app logs one line each).
  let replayed = 0;
  for (const t of tenants) {
    const starts = bodyStarts.get(t.runId) ?? [];
    const steps = views.get(t.id)?.steps ?? [];
    for (const start of starts.slice(1)) {
      replayed += steps.filter(
        (s) => s.status === 'succeeded' && s.finishedAt && new Date(s.finishedAt).getTime() < start.at,
      ).length;
    }
  }
  // Of the runs in flight at the kill, those the restarted app executed (resumed from their history).
  const resumedAfterCrash = crash
    ? [...crash.inFlight].filter((id) => (bodyStarts.get(id) ?? []).some((start) => start.life === 2)).length
    : 0;
  const ranTwice = new Map();
  for (const e of executions) {
    const id = `${e.run} ${e.key}`;
    const lives = ranTwice.get(id) ?? new Set();
    lives.add(e.life);
    ranTwice.set(id, lives);
  }
  const reExecuted = [...ranTwice.values()].filter((lives) => lives.size > 1).length;
  const retries = executions.filter((e) => e.attempt > 1).length;

  const count = (status) => tenants.filter((t) => statuses.get(t.id) === status).length;
  const compensated = (status) =>
    tenants.filter(
      (t) =>
        statuses.get(t.id) === status &&
        (views.get(t.id)?.steps ?? []).some((s) => s.key.startsWith('$undo:')),
    ).length;
  const { rows: quota } = await db.query(
    `SELECT count(*)::int AS reservations, count(DISTINCT tenant_id)::int AS tenants,
            count(*) FILTER (WHERE released_at IS NULL)::int AS held FROM quota_reservations WHERE tenant_id = ANY($1::uuid[])`,
    [tenants.map((t) => t.id)],
  );

  const line = (label, value) => console.log(`  ${label.padEnd(28)} ${value}`);
  console.log(`\n${c.bold('Summary')} ${c.dim(`(${elapsed()})`)}`);
  for (const pin of pinned) console.log(`  ${pin.trim()}`);
  line('tenants', `${tenants.length}`);
  line('  active', c.green(String(count('active'))));
  line('  failed', `${c.red(String(count('failed')))} (compensated: ${compensated('failed')})`);
  line('  cancelled', `${count('cancelled')} (compensated: ${compensated('cancelled')})`);
  if (crash) {
    line(
      'in flight at the SIGKILL',
      `${crash.inFlight.size} runs (${crash.executing} executing, ${crash.inFlight.size - crash.executing} parked or queued)`,
    );
    line(
      'recovered at the restart',
      `${recoveredAtRestart ?? 0} (the executing ones, returned to the queue at startup)`,
    );
    line('resumed after the crash', `${resumedAfterCrash} of the ${crash.inFlight.size} in flight`);
  }
  line('steps executed', `${executions.length} step bodies ran (${retries} of them retries)`);
  line('steps replayed', `${replayed} recorded results returned without running again`);
  line(
    're-executed after the crash',
    CRASH ? `${reExecuted} (in flight at the SIGKILL; same idempotency key)` : '-',
  );
  line(
    'quota reservations',
    `${quota[0].reservations} for ${quota[0].tenants} tenants, ${quota[0].held} held (one per active tenant)`,
  );
  const injected = calls.filter((call) => call.injected).length;
  const keyed = calls.filter((call) => call.outcome === 'replayed').length;
  line(
    'provider calls',
    `${calls.length} (${injected} failed on purpose, ${keyed} answered from an idempotency key)`,
  );

  console.log(
    `\n  ${c.bold('Provider calls per tenant')} ${c.dim('(db = databases created, all-time; live = not deleted)')}`,
  );
  console.log(
    c.dim(
      `  ${'tenant'.padEnd(24)}${'plan'.padEnd(11)}${'status'.padEnd(11)}${'calls'.padStart(5)}  ${'db'.padStart(2)} ${'live'.padStart(4)}  operations`,
    ),
  );
  let maxDatabases = 0;
  for (const t of tenants) {
    const mine = calls.filter((call) => call.tenantId === t.id);
    const dbs = resources.databases.filter((d) => d.tenantId === t.id);
    maxDatabases = Math.max(maxDatabases, dbs.length);
    const live = dbs.filter((d) => !d.deletedAt).length;
    const ops = {};
    for (const call of mine) ops[call.operation] = (ops[call.operation] ?? 0) + 1;
    const short = {
      createDatabase: 'db+',
      deleteDatabase: 'db-',
      createDnsRecord: 'dns+',
      deleteDnsRecord: 'dns-',
      sendEmail: 'mail',
    };
    const status = statuses.get(t.id) ?? '?';
    const color = STATUS[status]?.color ?? ((s) => s);
    console.log(
      `  ${t.name.slice(0, 23).padEnd(24)}${t.plan.padEnd(11)}${color(status.padEnd(11))}${String(mine.length).padStart(5)}  ${String(dbs.length).padStart(2)} ${String(live).padStart(4)}  ${Object.entries(
        ops,
      )
        .map(([op, n]) => `${short[op]}×${n}`)
        .join(' ')}`,
    );
  }
  const leftovers = tenants.filter(
    (t) =>
      statuses.get(t.id) !== 'active' &&
      [...resources.databases, ...resources.dnsRecords].some((r) => r.tenantId === t.id && !r.deletedAt),
  );
  const check = (ok, text) => console.log(`  ${ok ? c.green('✓') : c.red('✗')} ${text}`);
  console.log('');
  if (crash) {
    check(
      recoveredAtRestart === crash.executing && resumedAfterCrash === crash.inFlight.size,
      `every run in flight at the SIGKILL was resumed (${resumedAfterCrash}/${crash.inFlight.size}); ` +
        `recovered at startup = executing at the kill (${recoveredAtRestart ?? 0}/${crash.executing})`,
    );
  }
  check(maxDatabases <= 1, `at most one database per tenant at the provider (max ${maxDatabases})`);
  check(quota[0].reservations === quota[0].tenants, 'no quota reserved twice');
  check(
    leftovers.length === 0,
    leftovers.length === 0
      ? 'failed and cancelled tenants hold no live database or DNS record'
      : `live resources left for ${leftovers.map((t) => t.name).join(', ')} (not compensated)`,
  );
  console.log(c.dim(`  logs: ${path.relative(root, LOG_DIR)}/app-life*.log, fake-provider.log`));
}

main().catch(async (error) => {
  if (TTY) process.stdout.write('\x1b[?25h');
  console.error(c.red(`\ndemo failed: ${error?.stack ?? error}`));
  await cleanup();
  process.exit(1);
});
