import { Injectable, Logger } from '@nestjs/common';
import type { ErrorInfo } from '../interfaces';
import type {
  DurableLifecycleEvent,
  DurableLifecycleEventOf,
  DurableLifecycleEventType,
} from '../events/lifecycle-events';

/** How a run ended, as known by the process that ended it. */
export interface RunEnded {
  id: string;
  status: 'succeeded' | 'failed' | 'cancelled';
  output?: unknown;
  error?: ErrorInfo | null;
}

type Listener<T> = (value: T) => void;
/** A lifecycle listener may be async; its promise is not awaited, a rejection is logged. */
type LifecycleListener<T> = (event: T) => void | Promise<void>;

/**
 * The library's events in this process. Public: the lifecycle events (`on`, `onAny`), typed in
 * `DurableLifecycleEvent`, for audit logs, websockets, metrics. Internal: the notifications between the
 * LISTEN connection, the worker and the waiters (run available, run ended, run event set). Run-scoped
 * listeners are keyed by run id, so a notification costs a map lookup, not a scan of all waiters.
 *
 * Listeners are called synchronously, in the engine's path: keep them quick, and hand slow work off.
 * A listener that throws (or rejects) is logged and does not disturb the run.
 * @example
 * constructor(events: DurableEvents) {
 *   events.on('run.finished', (e) => this.audit.record(e.runId, e.status));
 * }
 */
@Injectable()
export class DurableEvents {
  private readonly logger = new Logger('Durable');
  private readonly runAvailable = new Set<Listener<void>>();
  private readonly reconnected = new Set<Listener<void>>();
  private readonly ended = new Map<string, Set<Listener<RunEnded | undefined>>>();
  private readonly eventSet = new Map<string, Set<Listener<void>>>();
  private readonly lifecycle = new Map<DurableLifecycleEventType, Set<LifecycleListener<never>>>();
  private readonly anyLifecycle = new Set<LifecycleListener<DurableLifecycleEvent>>();

  /** Calls `listener` for every lifecycle event of `type` in this process. Returns the unsubscribe. */
  on<T extends DurableLifecycleEventType>(
    type: T,
    listener: LifecycleListener<DurableLifecycleEventOf<T>>,
  ): () => void {
    let listeners = this.lifecycle.get(type);
    if (!listeners) this.lifecycle.set(type, (listeners = new Set()));
    listeners.add(listener as LifecycleListener<never>);
    return () => listeners.delete(listener as LifecycleListener<never>);
  }

  /** Calls `listener` for every lifecycle event in this process. Returns the unsubscribe. */
  onAny(listener: LifecycleListener<DurableLifecycleEvent>): () => void {
    this.anyLifecycle.add(listener);
    return () => this.anyLifecycle.delete(listener);
  }

  /** @internal Emitted by the engine. */
  emit(event: DurableLifecycleEvent): void {
    for (const listener of this.lifecycle.get(event.type) ?? []) this.call(listener, event);
    for (const listener of this.anyLifecycle) this.call(listener, event);
  }

  private call(listener: LifecycleListener<never>, event: DurableLifecycleEvent): void {
    try {
      const result = (listener as LifecycleListener<DurableLifecycleEvent>)(event);
      if (result && typeof result.catch === 'function')
        result.catch((error) => this.listenerFailed(event, error));
    } catch (error) {
      this.listenerFailed(event, error);
    }
  }

  private listenerFailed(event: DurableLifecycleEvent, error: unknown): void {
    this.logger.error(`A listener of "${event.type}" threw: ${(error as Error)?.message ?? String(error)}`);
  }

  /** @internal */
  onRunAvailable(listener: Listener<void>): () => void {
    this.runAvailable.add(listener);
    return () => this.runAvailable.delete(listener);
  }

  /** @internal */
  emitRunAvailable(): void {
    for (const listener of this.runAvailable) listener();
  }

  /** @internal */
  onReconnected(listener: Listener<void>): () => void {
    this.reconnected.add(listener);
    return () => this.reconnected.delete(listener);
  }

  /** @internal */
  emitReconnected(): void {
    for (const listener of this.reconnected) listener();
    this.emit({ type: 'listener.reconnected' });
  }

  /** @internal `ended` is known when the run ended in this process, undefined when another process said so. */
  onRunEnded(id: string, listener: Listener<RunEnded | undefined>): () => void {
    return subscribe(this.ended, id, listener);
  }

  /** @internal */
  emitRunEnded(id: string, ended?: RunEnded): void {
    for (const listener of this.ended.get(id) ?? []) listener(ended);
  }

  /** @internal A run's event stream grew (Durable.setEvent, in any process). */
  onRunEvent(id: string, listener: Listener<void>): () => void {
    return subscribe(this.eventSet, id, listener);
  }

  /** @internal */
  emitRunEvent(id: string): void {
    for (const listener of this.eventSet.get(id) ?? []) listener();
  }
}

function subscribe<T>(map: Map<string, Set<Listener<T>>>, id: string, listener: Listener<T>): () => void {
  let listeners = map.get(id);
  if (!listeners) map.set(id, (listeners = new Set()));
  listeners.add(listener);
  return () => {
    listeners.delete(listener);
    if (listeners.size === 0) map.delete(id);
  };
}
