import { Injectable } from '@nestjs/common';
import { durableScope } from '../context';
import { DurableClient } from '../durable.client';
import { WORKFLOW_NAME_SYMBOL } from '../durable.constants';
import type { StepMetadata, WorkflowMetadata } from '../decorators';
import { StepRunner } from './step.runner';

type Method = (...args: unknown[]) => unknown;

/**
 * Builds the wrappers installed on provider instances in place of @Workflow/@Step methods, which decide
 * per call (from the async context) whether the call is durable.
 */
@Injectable()
export class DurableCallInterceptor {
  constructor(
    private readonly client: DurableClient,
    private readonly steps: StepRunner,
  ) {}

  /** Outside a workflow: start a run and return its result. Inside one: a child run, as a step. */
  wrapWorkflow(meta: WorkflowMetadata, methodName: string): Method {
    const { client } = this;
    const wrapper = function (...args: unknown[]) {
      const scope = durableScope.getStore();
      if (scope && !scope.step) return scope.execution.waits.child(scope.execution, meta, args);
      return client.start(meta.name, args).then((handle) => handle.result());
    };
    return named(wrapper, methodName, meta.name);
  }

  /** Inside a workflow (and not inside another step): checkpointed. Anywhere else: a plain call. */
  wrapStep(meta: StepMetadata, original: Method, methodName: string): Method {
    const { steps } = this;
    const wrapper = function (this: unknown, ...args: unknown[]) {
      const scope = durableScope.getStore();
      if (!scope || scope.step) return original.apply(this, args);
      const undoArgs = meta.compensate ? args : undefined;
      return steps.run(scope.execution, meta, async () => original.apply(this, args), 'step', undoArgs);
    };
    return named(wrapper, methodName);
  }
}

function named(fn: Method, methodName: string, workflowName?: string): Method {
  Object.defineProperty(fn, 'name', { value: methodName });
  if (workflowName !== undefined) Object.defineProperty(fn, WORKFLOW_NAME_SYMBOL, { value: workflowName });
  return fn;
}
