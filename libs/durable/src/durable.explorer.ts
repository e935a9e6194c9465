import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import type { InstanceWrapper } from '@nestjs/core/injector/instance-wrapper';
import { defaultStepMetadata } from './decorators/step.decorator';
import { WORKFLOW_NAME_SYMBOL } from './durable.constants';
import { InvalidArgumentError, InvalidOptionsError } from './errors';
import { DurableMetadataAccessor } from './durable-metadata.accessor';
import { messages } from './durable.messages';
import { DurableOptionsHolder } from './durable.options';
import { DurableCallInterceptor } from './engine/durable-call.interceptor';
import { ScheduleRegistry } from './schedules/schedule.registry';
import { WorkflowRegistry } from './workflow.registry';

type Method = (...args: unknown[]) => unknown;

/**
 * At onModuleInit, walks every provider, registers its @Workflow methods and installs the durable
 * wrappers of its @Workflow/@Step methods on the instance.
 */
@Injectable()
export class DurableExplorer implements OnModuleInit {
  private readonly logger = new Logger('Durable');

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly accessor: DurableMetadataAccessor,
    private readonly registry: WorkflowRegistry,
    private readonly interceptor: DurableCallInterceptor,
    private readonly schedules: ScheduleRegistry,
    private readonly options: DurableOptionsHolder,
  ) {}

  onModuleInit(): void {
    const seen = new WeakSet<object>();
    for (const wrapper of this.discovery.getProviders()) this.explore(wrapper, seen);
  }

  private explore(wrapper: InstanceWrapper, seen: WeakSet<object>): void {
    const instance = wrapper.instance as Record<string, Method> | undefined;
    const prototype = wrapper.metatype?.prototype ?? (instance ? Object.getPrototypeOf(instance) : undefined);
    if (!prototype || typeof prototype !== 'object') return;
    const decorated = this.scanner
      .getAllMethodNames(prototype)
      .filter(
        (name) =>
          this.accessor.getWorkflowMetadata(prototype[name]) ||
          this.accessor.getStepMetadata(prototype[name]) ||
          this.accessor.getScheduleMetadata(prototype[name]),
      );
    if (decorated.length === 0) return;
    const className = wrapper.metatype?.name ?? String(wrapper.name);
    if (!wrapper.isDependencyTreeStatic()) {
      this.logger.warn(messages.requestScoped(className));
      return;
    }
    if (!instance || typeof instance !== 'object' || seen.has(instance)) return;
    seen.add(instance);
    for (const methodName of decorated) {
      const original = prototype[methodName] as Method;
      const workflow = this.accessor.getWorkflowMetadata(original);
      const step = this.accessor.getStepMetadata(original);
      const schedules = this.accessor.getScheduleMetadata(original);
      if (schedules && !workflow) {
        throw new InvalidArgumentError(messages.scheduleWithoutWorkflow(`${className}.${methodName}`));
      }
      if (workflow) {
        if (workflow.queue !== undefined && !this.options.value.queues.some((q) => q.name === workflow.queue))
          throw new InvalidOptionsError(
            messages.unknownWorkflowQueue(
              `${className}.${methodName}`,
              workflow.queue,
              this.options.value.queues.map((q) => q.name),
            ),
          );
        if (schedules) this.schedules.add(workflow.name, `${className}.${methodName}`, schedules);
        this.registry.add({
          name: workflow.name,
          version: workflow.version,
          timeoutMs: workflow.timeoutMs,
          maxRecoveryAttempts: workflow.maxRecoveryAttempts ?? this.options.value.maxRecoveryAttempts,
          queue: workflow.queue,
          location: `${className}.${methodName}`,
          invoke: async (args) => original.apply(instance, args),
        });
        Object.defineProperty(original, WORKFLOW_NAME_SYMBOL, { value: workflow.name, configurable: true });
        instance[methodName] = this.interceptor.wrapWorkflow(workflow, methodName);
      } else if (step) {
        instance[methodName] = this.interceptor.wrapStep(step, original, methodName);
        if (step.compensate)
          this.registerCompensation(instance, prototype, className, methodName, step.name, step.compensate);
      }
    }
  }

  private registerCompensation(
    instance: Record<string, Method>,
    prototype: Record<string, Method>,
    className: string,
    methodName: string,
    stepName: string,
    undoName: string,
  ): void {
    const location = `${className}.${methodName}`;
    const undoMethod = prototype[undoName];
    if (typeof undoMethod !== 'function') {
      throw new InvalidArgumentError(messages.compensationMissing(location, undoName));
    }
    this.registry.addCompensation({
      stepName,
      location,
      meta: this.accessor.getStepMetadata(undoMethod) ?? defaultStepMetadata(undoName),
      // Through the instance, so an undo that is itself a @Step runs as a plain call inside this one.
      undo: async (output, args) => instance[undoName](output, ...args),
    });
  }
}
