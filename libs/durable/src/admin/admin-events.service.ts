import { Inject, Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import type { MessageEvent } from '@nestjs/common';
import type { Client } from 'pg';
import { Observable } from 'rxjs';
import { DurableDatabase } from '../persistence/durable.database';
import { newClientLike } from '../persistence/notification.listener';
import { DURABLE_ADMIN_OPTIONS, type ResolvedAdminOptions } from './admin.options';
import { DurableAdminStore } from './admin.store';

/** After a notification, at most one refresh per this interval (many runs ending at once cost one query). */
const THROTTLE_MS = 1_000;
/** Changes that send no NOTIFY (a claim, a step) are picked up this often while someone watches. */
const FALLBACK_MS = 5_000;

/** What the dashboard receives: counts per status and, on a run's page, that run's status. */
export interface AdminLiveState {
  counts: Record<string, number>;
  cap: number;
  run?: { id: string; status: string; updatedAt: string } | null;
}

/**
 * Live refresh of the dashboard over server-sent events, driven by the library's NOTIFY channel: while
 * at least one page is open, one LISTEN connection (beside the pool) marks the state dirty, and one
 * shared refresh (throttled, with a slow fallback for changes that notify nothing) feeds every viewer.
 */
@Injectable()
export class AdminEventsService implements OnModuleDestroy {
  private readonly logger = new Logger('DurableAdmin');
  private readonly viewers = new Set<Viewer>();
  private listener?: Client;
  private timer?: NodeJS.Timeout;
  private dirty = true;
  private lastRefresh = 0;
  private refreshing = false;

  constructor(
    private readonly store: DurableAdminStore,
    private readonly db: DurableDatabase,
    @Inject(DURABLE_ADMIN_OPTIONS) private readonly options: ResolvedAdminOptions,
  ) {}

  /** A stream of state changes for one viewer (the first event at once). */
  stream(runId?: string): Observable<MessageEvent> {
    return new Observable<MessageEvent>((subscriber) => {
      const viewer: Viewer = { runId, last: '', send: (data) => subscriber.next({ data }) };
      this.viewers.add(viewer);
      this.start();
      void this.refresh([viewer]);
      return () => {
        this.viewers.delete(viewer);
        if (this.viewers.size === 0) void this.stop();
      };
    });
  }

  async onModuleDestroy(): Promise<void> {
    this.viewers.clear();
    await this.stop();
  }

  private start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      const due = Date.now() - this.lastRefresh >= (this.dirty ? THROTTLE_MS : FALLBACK_MS);
      if (due && !this.refreshing) void this.refresh([...this.viewers]);
    }, 250);
    void this.listen();
  }

  private async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    const client = this.listener;
    this.listener = undefined;
    if (client) {
      client.removeAllListeners('notification');
      await client.end().catch(() => undefined);
    }
  }

  private async listen(): Promise<void> {
    const client = newClientLike(this.db.pool);
    client.on('error', () => {
      if (this.listener === client) this.listener = undefined; // the fallback refresh goes on
    });
    client.on('notification', () => (this.dirty = true));
    try {
      await client.connect();
      await client.query(`LISTEN "${this.db.channel}"`);
      if (!this.timer) return void (await client.end());
      this.listener = client;
    } catch (error) {
      this.logger.warn(
        `Live refresh falls back to polling every ${FALLBACK_MS} ms: ${(error as Error).message}`,
      );
      void client.end().catch(() => undefined);
    }
  }

  private async refresh(viewers: Viewer[]): Promise<void> {
    if (viewers.length === 0) return;
    this.refreshing = true;
    this.dirty = false;
    this.lastRefresh = Date.now();
    try {
      const { counts, cap } = await this.store.countByStatus(this.options.countCap);
      for (const viewer of viewers) {
        const state: AdminLiveState = { counts, cap };
        if (viewer.runId !== undefined) {
          const run = await this.store.runState(viewer.runId);
          state.run = run
            ? { id: viewer.runId, status: run.status, updatedAt: run.updatedAt.toISOString() }
            : null;
        }
        const text = JSON.stringify(state);
        if (text === viewer.last) continue;
        viewer.last = text;
        viewer.send(state);
      }
    } catch (error) {
      this.dirty = true;
      this.logger.warn(`Live refresh failed: ${(error as Error).message}`);
    } finally {
      this.refreshing = false;
    }
  }
}

interface Viewer {
  runId?: string;
  last: string;
  send(state: AdminLiveState): void;
}
