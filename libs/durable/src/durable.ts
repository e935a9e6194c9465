import type { EntityManager } from 'typeorm';
import { durableScope } from './context';
import { messages } from './durable.messages';
import { OutsideWorkflowError } from './errors';
import { Duration, toMilliseconds, toOptionalMilliseconds } from './duration';
import { delay } from './engine/retry-delay';
import { senderOf } from './messaging/message.sender';
import type { DurableContextInfo } from './interfaces';
import { assertValidId } from './validation';

/**
 * Static helpers usable inside a running workflow or step.
 * @example
 * @Step() async charge(order: Order) {
 *   const { idempotencyKey } = Durable.context().step!;
 *   return this.payments.charge(order, { idempotencyKey });
 * }
 */
export class Durable {
  /** The current run (and step, inside a step). Throws outside a workflow. */
  static context(): DurableContextInfo {
    const scope = durableScope.getStore();
    if (!scope) throw new OutsideWorkflowError(messages.outsideWorkflow('Durable.context()'));
    const { run } = scope.execution;
    const info: DurableContextInfo = { runId: run.id, workflow: run.workflow, version: run.version };
    if (scope.step) {
      const { name, key, attempt, signal, idempotencyKey } = scope.step;
      info.step = { name, key, attempt, signal, idempotencyKey };
    }
    return info;
  }

  /**
   * A durable timer: the wake time is recorded and the run parked (no memory held), so the sleep
   * survives restarts. Inside a step it is a plain in-memory sleep.
   */
  static sleep(duration: Duration): Promise<void> {
    const ms = toMilliseconds(duration);
    const scope = durableScope.getStore();
    if (!scope) throw new OutsideWorkflowError(messages.outsideWorkflow('Durable.sleep()'));
    if (scope.step) return delay(ms, scope.step.signal);
    return scope.execution.waits.sleep(scope.execution, ms);
  }

  /**
   * Waits for a signal sent with DurableClient.signal (also one sent before this call). Resolves with
   * its payload (null when it had none), or undefined once `timeout` passes. Survives restarts.
   * @example const approval = await Durable.waitForSignal<{ by: string }>('approval', { timeout: '3d' });
   */
  static waitForSignal<T = unknown>(
    name: string,
    options: { timeout?: Duration } = {},
  ): Promise<T | undefined> {
    assertValidId('signal name', name);
    const timeoutMs = toOptionalMilliseconds(options.timeout);
    const scope = durableScope.getStore();
    if (!scope) throw new OutsideWorkflowError(messages.outsideWorkflow('Durable.waitForSignal()'));
    if (scope.step) throw new OutsideWorkflowError(messages.signalInsideStep());
    return scope.execution.waits.waitForSignal(scope.execution, name, timeoutMs) as Promise<T | undefined>;
  }

  /**
   * Publishes progress of the run: appends `value` under `key` to the run's event stream, for
   * `client.getEvent(runId, key)` (the latest value of a key) and `client.events(runId)` (every event,
   * in order: e.g. server-sent events). Durable: recorded as a step (`$event:<key>#n`) in the same
   * statement, so a replay does not append it again. Call it from the workflow method, not inside a step.
   * @example await Durable.setEvent('progress', { stage: 'database', done: 2, of: 6 });
   */
  static setEvent(key: string, value: unknown): Promise<void> {
    assertValidId('event key', key);
    const scope = durableScope.getStore();
    if (!scope) throw new OutsideWorkflowError(messages.outsideWorkflow('Durable.setEvent()'));
    if (scope.step) throw new OutsideWorkflowError(messages.setEventInsideStep());
    return scope.execution.runEvents!.set(scope.execution, key, value);
  }

  /**
   * Sends a message to run `runId` (received there with Durable.waitForSignal(topic)), exactly once: the
   * send is recorded as a step of this run, so a replay or a re-execution does not send it again.
   * @example await Durable.send(parentRunId, 'progress', { done: 3, of: 10 });
   */
  static send(runId: string, topic: string, message?: unknown): Promise<void> {
    const scope = durableScope.getStore();
    if (!scope) throw new OutsideWorkflowError(messages.outsideWorkflow('Durable.send()'));
    if (scope.step) throw new OutsideWorkflowError(messages.sendInsideStep());
    return senderOf(scope.execution).sendFromRun(scope.execution, runId, topic, message);
  }

  /** Inside a @Step({ transactional: true }): the EntityManager of the step's transaction. */
  static manager(): EntityManager {
    const manager = durableScope.getStore()?.step?.manager;
    if (!manager) throw new OutsideWorkflowError(messages.outsideTransactionalStep());
    return manager;
  }
}
