import { Injectable, Logger } from '@nestjs/common';
import { Client, type ClientConfig, type Notification, type Pool } from 'pg';
import { DurableOptionsHolder } from '../durable.options';
import { DurableEvents } from '../engine/durable.events';
import { DurableDatabase } from './durable.database';
import { channelName } from './schema-name';

const RECONNECT_MS = 1_000;

/**
 * Holds one connection in LISTEN on the schema's channel and turns notifications into events:
 * 'run' (work is available), 'done:<id>' (a run ended) and 'event:<id>' (Durable.setEvent). Reconnects on failure; polling covers gaps.
 * The connection is opened beside the DataSource's pool, with the pool's own settings, rather than
 * taken from it: a connection held for the life of the process would shrink the app's pool by one.
 */
@Injectable()
export class NotificationListener {
  private readonly logger = new Logger('Durable');
  private readonly channel: string;
  private client?: Client;
  private stopped = true;
  private reconnectTimer?: NodeJS.Timeout;

  constructor(
    private readonly db: DurableDatabase,
    private readonly events: DurableEvents,
    options: DurableOptionsHolder,
  ) {
    this.channel = channelName(options.value.schema);
  }

  /** Whether the LISTEN connection is up (false between a loss and the reconnect, and when stopped). */
  get connected(): boolean {
    return this.client !== undefined;
  }

  async start(): Promise<void> {
    this.stopped = false;
    await this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    client.removeAllListeners('notification');
    await client.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    const client = newClientLike(this.db.pool);
    client.on('notification', (message) => this.dispatch(message));
    client.on('error', (error) => this.lost(client, error));
    try {
      await client.connect();
      await client.query(`LISTEN "${this.channel}"`);
      if (this.stopped) {
        await client.end();
        return;
      }
      this.client = client;
    } catch (error) {
      void client.end().catch(() => undefined);
      this.scheduleReconnect(error);
    }
  }

  private lost(client: Client, error: Error): void {
    void client.end().catch(() => undefined);
    if (this.client !== client) return;
    this.client = undefined;
    this.scheduleReconnect(error);
  }

  private scheduleReconnect(error: unknown): void {
    if (this.stopped) return;
    this.logger.warn(`LISTEN connection lost (${(error as Error)?.message ?? error}); reconnecting.`);
    this.reconnectTimer = setTimeout(() => {
      void this.connect().then(() => this.events.emitReconnected());
    }, RECONNECT_MS);
  }

  private dispatch(message: Notification): void {
    const payload = message.payload ?? '';
    if (payload === 'run') this.events.emitRunAvailable();
    else if (payload.startsWith('done:')) this.events.emitRunEnded(payload.slice('done:'.length));
    else if (payload.startsWith('event:')) this.events.emitRunEvent(payload.slice('event:'.length));
  }
}

/** A client made the way the pool makes its own (its Client class and its connection settings). */
export function newClientLike(pool: Pool): Client {
  const { Client: PoolClientClass, options } = pool as unknown as {
    Client?: typeof Client;
    options?: ClientConfig;
  };
  return new (PoolClientClass ?? Client)(options);
}
