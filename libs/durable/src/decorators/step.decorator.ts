import { SetMetadata } from '@nestjs/common';
import { DEFAULT_RETRY, STEP_METADATA } from '../durable.constants';
import { toMilliseconds, toOptionalMilliseconds } from '../duration';
import { InvalidArgumentError } from '../errors';
import type { RetryOptions, StepOptions } from '../interfaces';
import { assertValidName } from '../validation';
import type { ResolvedRetryPolicy, StepMetadata } from './workflow-metadata';

/**
 * Checkpoints a provider method when a workflow calls it: after a crash its recorded result is
 * returned instead of running it again. Outside a workflow it is a plain call.
 * @example
 * @Step({ retry: { maxAttempts: 5, initialDelay: '2s', nonRetryable: [BadRequestException] } })
 * async createDatabase(tenantId: string) { ... }
 */
export function Step(nameOrOptions?: string | StepOptions): MethodDecorator {
  const options: StepOptions =
    typeof nameOrOptions === 'string' ? { name: nameOrOptions } : (nameOrOptions ?? {});
  return (target, propertyKey, descriptor) => {
    const name = options.name ?? String(propertyKey);
    assertValidName('Step', name);
    const metadata: StepMetadata = {
      name,
      transactional: options.transactional === true,
      isolation: resolveIsolation(name, options),
      timeoutMs: toOptionalMilliseconds(options.timeout),
      retry: resolveRetry(name, options.retry),
      compensate: resolveCompensate(name, options.compensate),
    };
    return SetMetadata(STEP_METADATA, metadata)(target, propertyKey, descriptor);
  };
}

/** Step options of a method without @Step (e.g. an undo method): the defaults. */
export function defaultStepMetadata(name: string): StepMetadata {
  return { name, transactional: false, retry: resolveRetry(name) };
}

function resolveCompensate(step: string, compensate: unknown): string | undefined {
  if (compensate === undefined) return undefined;
  if (typeof compensate !== 'string' || compensate.length === 0) {
    throw new InvalidArgumentError(
      `@Step "${step}": compensate must be the name of a method of the same class.`,
    );
  }
  return compensate;
}

const ISOLATION_LEVELS = ['READ COMMITTED', 'REPEATABLE READ', 'SERIALIZABLE'];

function resolveIsolation(step: string, options: StepOptions): StepMetadata['isolation'] {
  if (options.isolation === undefined) return undefined;
  if (!ISOLATION_LEVELS.includes(options.isolation) || options.transactional !== true) {
    throw new InvalidArgumentError(
      `@Step "${step}": isolation must be one of ${ISOLATION_LEVELS.join(', ')}, on a transactional step.`,
    );
  }
  return options.isolation;
}

function resolveRetry(step: string, retry: RetryOptions = {}): ResolvedRetryPolicy {
  const policy: ResolvedRetryPolicy = {
    maxAttempts: retry.maxAttempts ?? DEFAULT_RETRY.maxAttempts,
    initialDelayMs:
      retry.initialDelay === undefined ? DEFAULT_RETRY.initialDelayMs : toMilliseconds(retry.initialDelay),
    backoffFactor: retry.backoffFactor ?? DEFAULT_RETRY.backoffFactor,
    maxDelayMs: retry.maxDelay === undefined ? DEFAULT_RETRY.maxDelayMs : toMilliseconds(retry.maxDelay),
    nonRetryable: retry.nonRetryable ?? [],
  };
  if (!Number.isInteger(policy.maxAttempts) || policy.maxAttempts < 1) {
    throw new InvalidArgumentError(`@Step "${step}": retry.maxAttempts must be an integer >= 1.`);
  }
  if (!(policy.backoffFactor >= 1)) {
    throw new InvalidArgumentError(`@Step "${step}": retry.backoffFactor must be a number >= 1.`);
  }
  if (!Array.isArray(policy.nonRetryable) || policy.nonRetryable.some((c) => typeof c !== 'function')) {
    throw new InvalidArgumentError(`@Step "${step}": retry.nonRetryable must be an array of error classes.`);
  }
  return policy;
}
