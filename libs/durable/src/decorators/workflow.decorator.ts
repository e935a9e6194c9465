import { SetMetadata } from '@nestjs/common';
import { DEFAULT_VERSION, WORKFLOW_METADATA } from '../durable.constants';
import { toOptionalMilliseconds } from '../duration';
import { InvalidArgumentError } from '../errors';
import type { WorkflowOptions } from '../interfaces';
import { assertValidName } from '../validation';
import type { WorkflowMetadata } from './workflow-metadata';

/**
 * Makes a provider method a durable workflow. Calling it from outside a workflow starts a run and
 * returns its result; inside a workflow it starts a child run.
 * @example
 * @Workflow({ name: 'provisionTenant', version: 2, timeout: '1h' })
 * async provision(tenantId: string) { await this.reserveQuota(tenantId); ... }
 */
export function Workflow(nameOrOptions?: string | WorkflowOptions): MethodDecorator {
  const options: WorkflowOptions =
    typeof nameOrOptions === 'string' ? { name: nameOrOptions } : (nameOrOptions ?? {});
  return (target, propertyKey, descriptor) => {
    const name = options.name ?? String(propertyKey);
    assertValidName('Workflow', name);
    const version = String(options.version ?? DEFAULT_VERSION);
    if (version.length === 0 || version.length > 100) {
      throw new InvalidArgumentError(`@Workflow version of "${name}" must be a non-empty string or number.`);
    }
    const maxRecoveryAttempts = options.maxRecoveryAttempts;
    if (
      maxRecoveryAttempts !== undefined &&
      (!Number.isInteger(maxRecoveryAttempts) || maxRecoveryAttempts < 1 || maxRecoveryAttempts > 1_000_000)
    ) {
      throw new InvalidArgumentError(
        `@Workflow "${name}": maxRecoveryAttempts must be an integer from 1 to 1000000.`,
      );
    }
    if (options.queue !== undefined && (typeof options.queue !== 'string' || options.queue.length === 0))
      throw new InvalidArgumentError(`@Workflow "${name}": queue must be the name of a configured queue.`);
    const metadata: WorkflowMetadata = {
      name,
      version,
      timeoutMs: toOptionalMilliseconds(options.timeout),
      maxRecoveryAttempts,
      queue: options.queue,
    };
    return SetMetadata(WORKFLOW_METADATA, metadata)(target, propertyKey, descriptor);
  };
}
