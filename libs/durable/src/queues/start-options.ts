import { createHash } from 'node:crypto';
import { MAX_ID_LENGTH } from '../durable.constants';
import { toMilliseconds } from '../duration';
import { messages } from '../durable.messages';
import { InvalidArgumentError, UnknownQueueError } from '../errors';
import type { StartOptions } from '../interfaces';
import { assertValidId } from '../validation';

/** The longest delay or debounce window: about 10 years. */
const MAX_DELAY_MS = 10 * 365 * 86_400_000;

const MAX_PRIORITY = 1_000_000;

/** The queue a run starts on: claimed only within that queue's limits (see queue-claim.ts). */
export interface QueuePlacement {
  name: string;
  key: string | null;
  priority: number;
}

/** Start options that change how a run is inserted (never executed inline at its start). */
export type FlowStart = (
  | { kind: 'delayed'; delayMs: number | null; startAt: Date | null; dedupKey: string | null }
  | { kind: 'debounced'; key: string; windowMs: number; offsetMs: number; idPrefix: string }
) & { queue: QueuePlacement | null };

/**
 * Validates the flow options of start(); undefined when there are none (the ordinary start path).
 * `queues` are the configured queue names; `defaultQueue` is the workflow's own (@Workflow({ queue })).
 */
export function resolveFlowStart(
  workflow: string,
  opts: StartOptions,
  queues: readonly string[] = [],
  defaultQueue?: string,
): FlowStart | undefined {
  const queue = resolvePlacement(opts, queues, defaultQueue);
  const flow = resolveTiming(workflow, opts);
  if (flow) return { ...flow, queue };
  return queue ? { kind: 'delayed', delayMs: null, startAt: null, dedupKey: null, queue } : undefined;
}

function resolvePlacement(
  opts: StartOptions,
  queues: readonly string[],
  defaultQueue: string | undefined,
): QueuePlacement | null {
  const { queue, key, priority } = opts;
  if (queue === undefined && defaultQueue === undefined) {
    if (key !== undefined || priority !== undefined)
      throw new InvalidArgumentError('start(): key and priority apply to a queue; give `queue` too.');
    return null;
  }
  const name = queue ?? defaultQueue;
  if (typeof name !== 'string' || !queues.includes(name))
    throw new UnknownQueueError(messages.unknownQueue(name, [...queues]));
  if (key !== undefined) assertValidId('queue key', key);
  if (
    priority !== undefined &&
    (typeof priority !== 'number' || !Number.isInteger(priority) || priority < 0 || priority > MAX_PRIORITY)
  )
    throw new InvalidArgumentError(`start(): priority must be an integer from 0 to ${MAX_PRIORITY}.`);
  return { name, key: key ?? null, priority: priority ?? 0 };
}

type Timing = DistributiveOmit<FlowStart, 'queue'>;
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

function resolveTiming(workflow: string, opts: StartOptions): Timing | undefined {
  const { delay, startAt, dedupKey, debounce } = opts;
  if (debounce !== undefined) {
    if (opts.id !== undefined || delay !== undefined || startAt !== undefined || dedupKey !== undefined) {
      throw new InvalidArgumentError(
        'start(): debounce derives the run id and its start time; it cannot be combined with id, delay, startAt or dedupKey.',
      );
    }
    if (debounce === null || typeof debounce !== 'object')
      throw new InvalidArgumentError('start(): debounce must be { key, window }.');
    assertValidId('debounce key', debounce.key);
    const windowMs = bounded('debounce.window', toMilliseconds(debounce.window), 1);
    const idPrefix = `debounce:${workflow}:${debounce.key}:`;
    if (idPrefix.length + 16 > MAX_ID_LENGTH) {
      throw new InvalidArgumentError(
        `start(): the workflow name and debounce key are too long together (at most ${MAX_ID_LENGTH - 26} characters).`,
      );
    }
    // Windows are aligned per key, at an offset derived from the key, so keys do not all start at once.
    const offsetMs = createHash('sha1').update(debounce.key).digest().readUInt32BE(0) % windowMs;
    return { kind: 'debounced', key: debounce.key, windowMs, offsetMs, idPrefix };
  }
  if (delay === undefined && startAt === undefined && dedupKey === undefined) return undefined;
  if (delay !== undefined && startAt !== undefined)
    throw new InvalidArgumentError('start(): give either delay or startAt, not both.');
  if (startAt !== undefined && (!(startAt instanceof Date) || Number.isNaN(startAt.getTime())))
    throw new InvalidArgumentError('start(): startAt must be a valid Date.');
  if (dedupKey !== undefined) assertValidId('dedup key', dedupKey);
  return {
    kind: 'delayed',
    delayMs: delay === undefined ? null : bounded('delay', toMilliseconds(delay), 0),
    startAt: startAt ?? null,
    dedupKey: dedupKey ?? null,
  };
}

function bounded(option: string, ms: number, min: number): number {
  if (ms < min || ms > MAX_DELAY_MS)
    throw new InvalidArgumentError(`start(): ${option} must be from ${min} ms to 10 years.`);
  return ms;
}
