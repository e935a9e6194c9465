import { Injectable } from '@nestjs/common';
import type { ErrorInfo } from '../interfaces';

/** How a run ended, as known by the process that ended it. */
export interface RunEnded {
  id: string;
  status: 'succeeded' | 'failed' | 'cancelled';
  output?: unknown;
  error?: ErrorInfo | null;
}

type Listener<T> = (value: T) => void;

/**
 * In-process bus between the notification listener, the worker and result waiters. Run-scoped
 * listeners are keyed by run id, so a notification costs a map lookup, not a scan of all waiters.
 */
@Injectable()
export class DurableEvents {
  private readonly runAvailable = new Set<Listener<void>>();
  private readonly reconnected = new Set<Listener<void>>();
  private readonly ended = new Map<string, Set<Listener<RunEnded | undefined>>>();

  onRunAvailable(listener: Listener<void>): () => void {
    this.runAvailable.add(listener);
    return () => this.runAvailable.delete(listener);
  }

  emitRunAvailable(): void {
    for (const listener of this.runAvailable) listener();
  }

  onReconnected(listener: Listener<void>): () => void {
    this.reconnected.add(listener);
    return () => this.reconnected.delete(listener);
  }

  emitReconnected(): void {
    for (const listener of this.reconnected) listener();
  }

  /** `ended` is known when the run ended in this process, undefined when another process said so. */
  onRunEnded(id: string, listener: Listener<RunEnded | undefined>): () => void {
    let listeners = this.ended.get(id);
    if (!listeners) this.ended.set(id, (listeners = new Set()));
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
      if (listeners.size === 0) this.ended.delete(id);
    };
  }

  emitRunEnded(id: string, ended?: RunEnded): void {
    for (const listener of this.ended.get(id) ?? []) listener(ended);
  }
}
