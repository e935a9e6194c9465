import { Injectable, Logger } from '@nestjs/common';
import type { Notification, PoolClient } from 'pg';
import { DurableOptionsHolder } from '../durable.options';
import { DurableEvents } from '../engine/durable.events';
import { DurableDatabase } from './durable.database';
import { channelName } from './schema-name';

const RECONNECT_MS = 1_000;

/**
 * Holds one pool connection in LISTEN on the schema's channel and turns notifications into events:
 * 'run' (work is available) and 'done:<id>' (a run ended). Reconnects on failure; polling covers gaps.
 */
@Injectable()
export class NotificationListener {
  private readonly logger = new Logger('Durable');
  private readonly channel: string;
  private client?: PoolClient;
  private stopped = true;
  private reconnectTimer?: NodeJS.Timeout;

  constructor(
    private readonly db: DurableDatabase,
    private readonly events: DurableEvents,
    options: DurableOptionsHolder,
  ) {
    this.channel = channelName(options.value.schema);
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
    try {
      await client.query(`UNLISTEN "${this.channel}"`);
      client.release();
    } catch (error) {
      client.release(error as Error);
    }
  }

  private async connect(): Promise<void> {
    let client: PoolClient | undefined;
    try {
      client = await this.db.pool.connect();
      client.on('notification', (message) => this.dispatch(message));
      client.once('error', (error) => this.lost(client!, error));
      await client.query(`LISTEN "${this.channel}"`);
      if (this.stopped) {
        client.release();
        return;
      }
      this.client = client;
    } catch (error) {
      if (client) client.release(error as Error);
      this.scheduleReconnect(error);
    }
  }

  private lost(client: PoolClient, error: Error): void {
    if (this.client !== client) return;
    this.client = undefined;
    client.release(error);
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
  }
}
