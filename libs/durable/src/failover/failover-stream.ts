import { Socket, connect as tcpConnect } from 'node:net';
import { Client } from 'pg';
import { messages } from '../durable.messages';
import { NoAcceptableHostError } from '../errors';
import type { HostAndPort, MultiHostConnectionString, TargetSessionAttrs } from './connection-string';

/** Per host and attempt, when the connection string sets no connect_timeout. */
const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;

interface ServerState {
  recovery: boolean;
  readOnly: boolean;
}

/**
 * A `stream` factory for node-postgres (`new pg.Pool({ stream })`, or TypeORM's `extra.stream`) that
 * connects each new connection to the first host of the list that accepts the required kind of
 * session, as libpq does with several hosts and `target_session_attrs`. node-postgres itself connects
 * to one host only.
 *
 * Each new connection first asks the hosts in turn (the one that answered last time first) with a
 * short probe session: `pg_is_in_recovery()` and `transaction_read_only`, or only a TCP connect for
 * `any`. The app's connection then goes to the host that qualified. When none does, it fails: with
 * the last network error when no host answered, else with NoAcceptableHostError (e.g. while a
 * standby is being promoted); the pool's next connection asks again.
 * @example
 * const parsed = parseMultiHostConnectionString(process.env.DATABASE_URL!);
 * const pool = new Pool({ user: parsed.user, password: parsed.password, database: parsed.database,
 *   stream: failoverStream(parsed) });
 */
export function failoverStream(connection: MultiHostConnectionString): () => Socket {
  const selector = new HostSelector(connection);
  return () => new FailoverSocket(selector);
}

/** A socket whose connect() goes to the host the selector picks, whatever host pg asks for. */
class FailoverSocket extends Socket {
  constructor(private readonly selector: HostSelector) {
    super();
  }

  override connect(...args: unknown[]): this {
    if (typeof args[0] !== 'number' && typeof args[0] !== 'string') {
      // Not pg's connect(port, host): leave Node's own uses untouched.
      return (Socket.prototype.connect as (...a: unknown[]) => this).apply(this, args);
    }
    this.selector.select().then(
      ({ host, port }) => {
        if (!this.destroyed) super.connect(port, host);
      },
      (error: Error) => this.destroy(error),
    );
    return this;
  }
}

class HostSelector {
  /** Index of the host that qualified last, tried first next time. */
  private preferred = 0;
  private readonly timeoutMs: number;

  constructor(private readonly connection: MultiHostConnectionString) {
    this.timeoutMs = connection.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  }

  async select(): Promise<HostAndPort> {
    const { hosts, targetSessionAttrs } = this.connection;
    const order = hosts.map((_, i) => (this.preferred + i) % hosts.length);
    const passes: TargetSessionAttrs[] =
      targetSessionAttrs === 'prefer-standby' ? ['standby', 'any'] : [targetSessionAttrs];
    const refusals: string[] = [];
    let networkError: Error | undefined;
    let answered = false;
    for (const target of passes) {
      for (const index of order) {
        const candidate = hosts[index];
        try {
          if (target === 'any') {
            await this.reach(candidate);
          } else {
            const state = await this.probe(candidate);
            answered = true;
            if (!accepts(target, state)) {
              refusals.push(
                `${candidate.host}:${candidate.port} ${state.recovery ? 'is a standby' : 'is read-only'}`,
              );
              continue;
            }
          }
          this.preferred = index;
          return candidate;
        } catch (error) {
          networkError = error as Error;
          refusals.push(`${candidate.host}:${candidate.port} ${(error as Error).message}`);
        }
      }
    }
    if (!answered && networkError) throw networkError;
    throw new NoAcceptableHostError(messages.noAcceptableHost(targetSessionAttrs, refusals));
  }

  /** A TCP connect and close: is anything listening there? */
  private reach({ host, port }: HostAndPort): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = tcpConnect({ host, port, timeout: this.timeoutMs });
      socket.once('connect', () => {
        socket.destroy();
        resolve();
      });
      socket.once('timeout', () => socket.destroy(new Error(`timeout after ${this.timeoutMs} ms`)));
      socket.once('error', reject);
    });
  }

  /** A short session on the host: is it in recovery, does it default to read-only transactions? */
  private async probe({ host, port }: HostAndPort): Promise<ServerState> {
    const { user, password, database, ssl } = this.connection;
    const client = new Client({
      host,
      port,
      user,
      password,
      database,
      ssl,
      connectionTimeoutMillis: this.timeoutMs,
      application_name: 'nest-durable failover probe',
    });
    client.on('error', () => undefined); // a probe that dies is simply not chosen
    try {
      await client.connect();
      const { rows } = await client.query<{ recovery: boolean; read_only: string }>(
        `SELECT pg_catalog.pg_is_in_recovery() AS recovery,
                pg_catalog.current_setting('transaction_read_only') AS read_only`,
      );
      return { recovery: rows[0].recovery, readOnly: rows[0].read_only === 'on' };
    } finally {
      await client.end().catch(() => undefined);
    }
  }
}

function accepts(target: TargetSessionAttrs, state: ServerState): boolean {
  switch (target) {
    case 'read-write':
      return !state.recovery && !state.readOnly;
    case 'read-only':
      return state.recovery || state.readOnly;
    case 'primary':
      return !state.recovery;
    case 'standby':
      return state.recovery;
    default:
      return true;
  }
}
