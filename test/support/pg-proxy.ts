/**
 * A TCP proxy between an app and PostgreSQL that reads enough of the wire protocol to break a
 * connection at a chosen moment, the way a network, a load balancer or a failing server does:
 *
 *   const proxy = await PgProxy.start({ host: '127.0.0.1', port: 5432 });
 *   const url = proxy.urlFor(database.url);        // give this URL to the app
 *   const cut = proxy.loseReply(/^COMMIT/);        // the next COMMIT reaches the server, its reply is lost
 *   ...; await cut.fired;                           // { sql, tag }
 *   await proxy.outage(8_000);                      // every connection dropped, new ones refused, for 8 s
 *   proxy.terminateAfterReply(/INSERT/, (pid) => admin.query('SELECT pg_terminate_backend($1)', [pid]));
 *
 * What it understands: the startup packet (an SSLRequest is answered 'N': no TLS through the proxy),
 * then typed frontend messages: 'Q' (simple query, with its SQL), 'P' (Parse: statement name and SQL),
 * 'B' (Bind: portal to statement), 'E' (Execute), 'S' (Sync); and from the server, CommandComplete
 * (its tag, e.g. "UPDATE 3") and ReadyForQuery (with the transaction status). Everything else passes
 * through untouched. Named prepared statements are followed per connection, so a statement sent once
 * by name is still recognised on every later execution.
 *
 * A lost reply: the statement is forwarded and executed by the server; the proxy holds the server's
 * answer until its ReadyForQuery, then (when the rule's `when` accepts the CommandComplete tag, e.g. only
 * when rows were written) closes both sides without sending the client a byte of it. The server has
 * done the work (an autocommit statement or a COMMIT is durable; an open transaction is rolled back
 * when the connection closes), the client only sees its connection die: an unknown outcome.
 *
 * A termination right behind a reply: the statement's reply is held, the backend that sent it is
 * terminated (by the test's callback, e.g. pg_terminate_backend), and the reply reaches the client in
 * one piece with the server's termination notice (FATAL 57P01) and the end of the connection, as when
 * both arrive in one TCP read: the client sees its result and, in the same tick, its connection die.
 */
import net from 'node:net';

/** Protocol codes of untyped startup-phase packets. */
const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;

export interface LoseReplyOptions {
  /**
   * Decides from the CommandComplete tags of the statement's reply (e.g. ['INSERT 0 1'], ['COMMIT'])
   * whether to cut. Default: always. `rowsWritten` cuts only when a row was written or returned.
   */
  when?: (tags: string[]) => boolean;
  /** Only statements sent inside a transaction block (true) or outside one (false). Default: either. */
  inTransaction?: boolean;
  /** How many replies to lose before the rule is spent. Default 1. */
  times?: number;
}

export interface LostReply {
  sql: string;
  tags: string[];
  connection: number;
}

export interface ArmedCut {
  /** Resolves with the first reply lost by this rule. */
  fired: Promise<LostReply>;
  /** Every reply lost by this rule so far. */
  readonly lost: LostReply[];
  /** Disarms the rule (replies already lost stay lost). */
  disarm(): void;
}

/** Cut only when the statement wrote or returned at least one row (its tag ends in a count > 0). */
export const rowsWritten = (tags: string[]) => tags.some((tag) => /\s[1-9]\d*$/.test(tag));

interface Rule {
  pattern: RegExp;
  /** Instead of losing the reply: terminate the backend (by its pid) and deliver reply and notice together. */
  terminate?: (backendPid: number) => Promise<unknown>;
  when: (tags: string[]) => boolean;
  inTransaction?: boolean;
  remaining: number;
  cut: ArmedCut & { lost: LostReply[] };
  resolve: (reply: LostReply) => void;
}

interface Pending {
  /** The statement being watched and the rule that matched it. */
  sql: string;
  rule: Rule;
  /** Server bytes held back until the statement's ReadyForQuery. */
  held: Buffer[];
  tags: string[];
}

export class PgProxy {
  private server: net.Server;
  private readonly connections = new Set<ProxyConnection>();
  private readonly rules = new Set<Rule>();
  private nextId = 1;
  private refusing = false;
  /** Connections accepted since start (a reconnecting pool opens new ones). */
  accepted = 0;

  private constructor(
    private readonly target: { host: string; port: number },
    readonly port: number,
    server: net.Server,
  ) {
    this.server = server;
  }

  /** Listens on 127.0.0.1 (a free port unless `port` is given) and forwards to `target`. */
  static async start(target: { host: string; port: number }, port = 0): Promise<PgProxy> {
    const pending: net.Socket[] = [];
    const server = net.createServer((socket) => pending.push(socket));
    await listen(server, port);
    const proxy = new PgProxy(target, (server.address() as net.AddressInfo).port, server);
    server.removeAllListeners('connection');
    server.on('connection', (socket) => proxy.accept(socket));
    for (const socket of pending) proxy.accept(socket);
    return proxy;
  }

  /** The same URL with the proxy as host and port (credentials, database and parameters kept). */
  urlFor(databaseUrl: string): string {
    const url = new URL(databaseUrl);
    url.hostname = '127.0.0.1';
    url.port = String(this.port);
    return url.toString();
  }

  /** Connections currently open through the proxy. */
  get openConnections(): number {
    return this.connections.size;
  }

  /**
   * Arms a rule: the reply to the next statement whose SQL matches `pattern` (and that the options
   * accept) is lost, and that connection closed. Rules are checked in the order they were armed.
   */
  loseReply(pattern: RegExp, options: LoseReplyOptions = {}): ArmedCut {
    let resolve!: (reply: LostReply) => void;
    const fired = new Promise<LostReply>((r) => (resolve = r));
    const lost: LostReply[] = [];
    const rule: Rule = {
      pattern,
      when: options.when ?? (() => true),
      inTransaction: options.inTransaction,
      remaining: options.times ?? 1,
      resolve,
      cut: { fired, lost, disarm: () => void this.rules.delete(rule) },
    };
    this.rules.add(rule);
    return rule.cut;
  }

  /**
   * Arms a rule: after the reply to the next statement matching `pattern`, the backend is terminated by
   * `terminate(pid)`, and the client receives the reply together with the termination notice.
   */
  terminateAfterReply(
    pattern: RegExp,
    terminate: (backendPid: number) => Promise<unknown>,
    options: LoseReplyOptions = {},
  ): ArmedCut {
    const cut = this.loseReply(pattern, options);
    [...this.rules].find((rule) => rule.cut === cut)!.terminate = terminate;
    return cut;
  }

  /** Closes every open connection at once (both sides), as a dropped network or a killed pooler does. */
  dropAll(): number {
    const count = this.connections.size;
    for (const connection of [...this.connections]) connection.destroy();
    return count;
  }

  /**
   * The database is unreachable for `ms`: every open connection is dropped and new ones are refused
   * (the port stops listening: ECONNREFUSED) until the time is up. Resolves when it answers again.
   */
  async outage(ms: number): Promise<void> {
    await this.refuse();
    await new Promise((resolve) => setTimeout(resolve, ms));
    await this.restore();
  }

  /** Starts refusing: drops every connection and stops listening. */
  async refuse(): Promise<void> {
    if (this.refusing) return;
    this.refusing = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.dropAll();
    await closed;
  }

  /** Listens again on the same port after refuse(). */
  async restore(): Promise<void> {
    if (!this.refusing) return;
    this.server = net.createServer((socket) => this.accept(socket));
    await listen(this.server, this.port);
    this.refusing = false;
  }

  /** Stops listening and drops every connection. */
  async close(): Promise<void> {
    this.rules.clear();
    if (!this.refusing) await this.refuse();
  }

  /** The first armed rule that wants this statement, if any (spent rules are removed). */
  ruleFor(sql: string, inTransaction: boolean): Rule | undefined {
    for (const rule of this.rules) {
      if (rule.inTransaction !== undefined && rule.inTransaction !== inTransaction) continue;
      rule.pattern.lastIndex = 0;
      if (rule.pattern.test(sql)) return rule;
    }
    return undefined;
  }

  /** Whether a rule is still armed (not spent, not disarmed). */
  armed(rule: Rule): boolean {
    return this.rules.has(rule);
  }

  /** Records a lost reply against its rule. */
  fired(rule: Rule, reply: LostReply): void {
    rule.cut.lost.push(reply);
    rule.resolve(reply);
    if (--rule.remaining <= 0) this.rules.delete(rule);
  }

  private accept(client: net.Socket): void {
    if (this.refusing) {
      client.destroy();
      return;
    }
    this.accepted++;
    const connection = new ProxyConnection(this, this.nextId++, client, this.target);
    this.connections.add(connection);
    connection.onClose = () => this.connections.delete(connection);
  }
}

/** One client connection and its upstream connection to the server. */
class ProxyConnection {
  onClose?: () => void;
  private readonly upstream: net.Socket;
  private fromClient = Buffer.alloc(0);
  private fromServer = Buffer.alloc(0);
  private startupDone = false;
  /** Raw passthrough (a CancelRequest connection): nothing parsed. */
  private raw = false;
  private closed = false;
  /** Statement SQL by prepared statement name ('' = unnamed), and portal name to statement name. */
  private readonly statements = new Map<string, string>();
  private readonly portals = new Map<string, string>();
  /** The server process of this connection (from BackendKeyData). */
  private backendPid = 0;
  /** Set while a terminated backend's last bytes are collected, to be delivered in one write. */
  private draining?: Buffer[];
  /** Transaction status from the last ReadyForQuery: 'I' idle, 'T' in a block, 'E' failed block. */
  private status = 'I';
  /** A statement matched by a rule whose reply is being held; `awaitingSync` until its Sync went out. */
  private pending?: Pending;
  /** Statements whose ReadyForQuery is still to come (to know which Z ends the watched one). */
  private readonly outstanding: (Pending | undefined)[] = [];
  private matchedInBatch?: Pending;

  constructor(
    private readonly proxy: PgProxy,
    private readonly id: number,
    private readonly client: net.Socket,
    target: { host: string; port: number },
  ) {
    this.upstream = net.connect(target.port, target.host);
    this.upstream.setNoDelay(true);
    client.setNoDelay(true);
    // Until the upstream connects, client bytes are buffered by the socket write queue.
    client.on('data', (chunk) => this.onClientData(chunk));
    this.upstream.on('data', (chunk) => this.onServerData(chunk));
    for (const socket of [client, this.upstream]) {
      socket.on('error', () => this.destroy());
      socket.on('close', () => this.destroy());
    }
  }

  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    this.upstream.destroy();
    if (this.draining) {
      // The terminated backend's reply, notice and end of stream, in a single write.
      this.client.end(Buffer.concat(this.draining));
      setTimeout(() => this.client.destroy(), 1_000).unref();
    } else {
      this.client.destroy();
    }
    this.onClose?.();
  }

  private onClientData(chunk: Buffer): void {
    if (this.closed) return;
    if (this.raw) {
      this.upstream.write(chunk);
      return;
    }
    this.fromClient = Buffer.concat([this.fromClient, chunk]);
    for (;;) {
      if (!this.startupDone) {
        if (this.fromClient.length < 8) return;
        const length = this.fromClient.readInt32BE(0);
        if (this.fromClient.length < length) return;
        const packet = this.fromClient.subarray(0, length);
        this.fromClient = this.fromClient.subarray(length);
        const code = packet.readInt32BE(4);
        if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
          this.client.write('N'); // no encryption through the proxy; the client goes on in clear
          continue;
        }
        this.upstream.write(packet);
        if (code === CANCEL_REQUEST) {
          this.raw = true;
          this.upstream.write(this.fromClient);
          this.fromClient = Buffer.alloc(0);
          return;
        }
        this.startupDone = true;
        continue;
      }
      if (this.fromClient.length < 5) return;
      const length = this.fromClient.readInt32BE(1);
      if (this.fromClient.length < 1 + length) return;
      const message = this.fromClient.subarray(0, 1 + length);
      this.fromClient = this.fromClient.subarray(1 + length);
      this.onClientMessage(String.fromCharCode(message[0]), message);
      if (this.closed) return;
    }
  }

  private onClientMessage(type: string, message: Buffer): void {
    const body = message.subarray(5);
    switch (type) {
      case 'Q': {
        const sql = cstring(body, 0).value;
        this.upstream.write(message);
        this.outstanding.push(this.watch(sql));
        return;
      }
      case 'P': {
        const name = cstring(body, 0);
        const sql = cstring(body, name.next).value;
        this.statements.set(name.value, sql);
        break;
      }
      case 'B': {
        const portal = cstring(body, 0);
        const statement = cstring(body, portal.next).value;
        this.portals.set(portal.value, statement);
        break;
      }
      case 'E': {
        const portal = cstring(body, 0).value;
        const sql = this.statements.get(this.portals.get(portal) ?? '') ?? '';
        this.matchedInBatch ??= this.watch(sql);
        break;
      }
      case 'S':
        this.upstream.write(message);
        this.outstanding.push(this.matchedInBatch);
        this.matchedInBatch = undefined;
        return;
      case 'C': {
        // Close of a statement ('S') or portal ('P'): forget it.
        const kind = String.fromCharCode(body[0]);
        const name = cstring(body, 1).value;
        (kind === 'S' ? this.statements : this.portals).delete(name);
        break;
      }
    }
    this.upstream.write(message);
  }

  /** A Pending for `sql` when an armed rule wants it. */
  private watch(sql: string): Pending | undefined {
    const rule = this.proxy.ruleFor(sql, this.status !== 'I');
    return rule ? { sql, rule, held: [], tags: [] } : undefined;
  }

  private onServerData(chunk: Buffer): void {
    if (this.closed) return;
    if (this.draining) {
      this.draining.push(chunk);
      return;
    }
    if (this.raw) {
      this.client.write(chunk);
      return;
    }
    this.fromServer = Buffer.concat([this.fromServer, chunk]);
    for (;;) {
      if (this.fromServer.length < 5) return;
      const length = this.fromServer.readInt32BE(1);
      if (this.fromServer.length < 1 + length) return;
      const message = this.fromServer.subarray(0, 1 + length);
      this.fromServer = this.fromServer.subarray(1 + length);
      this.onServerMessage(String.fromCharCode(message[0]), message);
      if (this.closed) return;
    }
  }

  private onServerMessage(type: string, message: Buffer): void {
    // The reply in progress belongs to the oldest statement still waiting for its ReadyForQuery.
    const watched = this.outstanding[0];
    if (type === 'K') this.backendPid = message.readInt32BE(5);
    if (type === 'C' && watched) watched.tags.push(cstring(message.subarray(5), 0).value);
    if (type === 'Z') {
      this.status = String.fromCharCode(message[5]);
      this.outstanding.shift();
      if (watched) {
        watched.held.push(message);
        this.settle(watched);
        return;
      }
    }
    if (watched) watched.held.push(message);
    else this.client.write(message);
  }

  /** The watched statement's reply is complete: lose it (and the connection), or pass it on. */
  private settle(watched: Pending): void {
    const { rule } = watched;
    // Passed on when another connection's statement spent the rule meanwhile, or the tags do not qualify.
    if (!this.proxy.armed(rule) || !rule.when(watched.tags)) {
      this.client.write(Buffer.concat(watched.held));
      return;
    }
    this.proxy.fired(rule, { sql: watched.sql, tags: watched.tags, connection: this.id });
    if (!rule.terminate) {
      this.destroy();
      return;
    }
    // Collect what the server sends until it closes the connection, then deliver it all at once.
    this.draining = [...watched.held, this.fromServer];
    this.fromServer = Buffer.alloc(0);
    rule.terminate(this.backendPid).catch(() => this.destroy());
  }
}

/** A NUL-terminated string at `offset`, and the offset after it. */
function cstring(buffer: Buffer, offset: number): { value: string; next: number } {
  const end = buffer.indexOf(0, offset);
  const stop = end === -1 ? buffer.length : end;
  return { value: buffer.toString('utf8', offset, stop), next: stop + 1 };
}

function listen(server: net.Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
}
