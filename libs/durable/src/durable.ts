import type { EntityManager } from 'typeorm';
import { durableScope } from './context';
import { messages } from './durable.messages';
import { DurableError } from './errors';
import type { DurableContextInfo } from './interfaces';

class OutsideWorkflowError extends DurableError {
  readonly code = 'DURABLE_OUTSIDE_WORKFLOW';
}

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

  /** Inside a @Step({ transactional: true }): the EntityManager of the step's transaction. */
  static manager(): EntityManager {
    const manager = durableScope.getStore()?.step?.manager;
    if (!manager) throw new OutsideWorkflowError(messages.outsideTransactionalStep());
    return manager;
  }
}

export { OutsideWorkflowError };
