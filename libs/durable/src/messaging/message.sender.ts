import { Injectable } from '@nestjs/common';
import { durableScope } from '../context';
import type { StepMetadata } from '../decorators';
import { DEFAULT_RETRY } from '../durable.constants';
import { messages } from '../durable.messages';
import { DurableOptionsHolder } from '../durable.options';
import type { RunExecution } from '../engine/run-execution';
import { StepRunner } from '../engine/step.runner';
import { WaitRunner } from '../engine/wait.runner';
import { LimitExceededError, RunNotFoundError, RunStateError } from '../errors';
import { isFinished } from '../interfaces';
import { encodeJson } from '../persistence/json-codec';
import { assertValidId } from '../validation';
import { MessageStore } from './message.store';

/** The step a Durable.send records; sending to an unknown or finished run is not retried. */
const SEND_STEP: StepMetadata = {
  name: '$send',
  transactional: false,
  retry: {
    maxAttempts: DEFAULT_RETRY.maxAttempts,
    initialDelayMs: DEFAULT_RETRY.initialDelayMs,
    backoffFactor: DEFAULT_RETRY.backoffFactor,
    maxDelayMs: DEFAULT_RETRY.maxDelayMs,
    nonRetryable: [RunNotFoundError, RunStateError, LimitExceededError],
  },
};

/**
 * The sender of each app, found from a running execution (Durable.send is static): keyed by the app's
 * WaitRunner, which every execution of that app carries.
 */
const senders = new WeakMap<WaitRunner, MessageSender>();

/** The MessageSender of the app executing `execution`. */
export function senderOf(execution: RunExecution): MessageSender {
  const sender = senders.get(execution.waits);
  if (!sender) throw new Error('nest-durable: no message sender registered for this execution');
  return sender;
}

/** Sends messages to runs: client.send, and Durable.send recorded as a step of the sending run. */
@Injectable()
export class MessageSender {
  constructor(
    private readonly store: MessageStore,
    private readonly steps: StepRunner,
    private readonly options: DurableOptionsHolder,
    waits: WaitRunner,
  ) {
    senders.set(waits, this);
  }

  /** Stores a message for run `id`; false when one with the same idempotency key was stored before. */
  async send(id: string, topic: string, message: unknown, idempotencyKey?: string): Promise<boolean> {
    assertValidId('run id', id);
    assertValidId('topic', topic);
    if (idempotencyKey !== undefined) assertValidId('idempotency key', idempotencyKey);
    const payload =
      message === undefined
        ? 'null'
        : encodeJson(message, `Message "${topic}"`, this.options.value.maxPayloadBytes);
    const { maxPendingSignals, maxPendingSignalBytes } = this.options.value;
    const outcome = await this.store.send(id, topic, payload, idempotencyKey ?? null, {
      maxPending: maxPendingSignals,
      maxBytes: maxPendingSignalBytes,
    });
    if (outcome.stored) return true;
    if (!outcome.status) throw new RunNotFoundError(messages.runNotFound(id));
    if (outcome.duplicate) return false;
    if (isFinished(outcome.status))
      throw new RunStateError(messages.signalToFinishedRun(id, topic, outcome.status));
    if (outcome.limit === 'signals')
      throw new LimitExceededError(
        messages.signalLimit(id, `${maxPendingSignals} unconsumed signals`, maxPendingSignals),
      );
    if (outcome.limit === 'bytes')
      throw new LimitExceededError(
        messages.signalLimit(id, 'that many bytes of unconsumed signals', maxPendingSignalBytes),
      );
    return false;
  }

  /** Durable.send: one recorded step whose idempotency key makes the send happen exactly once. */
  async sendFromRun(execution: RunExecution, id: string, topic: string, message: unknown): Promise<void> {
    assertValidId('run id', id);
    assertValidId('topic', topic);
    await this.steps.run(execution, SEND_STEP, () =>
      this.send(id, topic, message, durableScope.getStore()!.step!.idempotencyKey),
    );
  }
}
