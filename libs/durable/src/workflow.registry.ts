import { Injectable } from '@nestjs/common';
import { messages } from './durable.messages';
import type { StepMetadata } from './decorators';
import { DuplicateWorkflowError, InvalidArgumentError } from './errors';
import type { ServedPairs } from './persistence/durable.store';

/** A @Workflow method found on a provider. */
export interface RegisteredWorkflow {
  name: string;
  version: string;
  timeoutMs?: number;
  /** Claims without progress after which a run is set aside (the workflow's or the module's limit). */
  maxRecoveryAttempts: number;
  /** Queue of start() when it names none (@Workflow({ queue })). */
  queue?: string;
  /** 'ClassName.method', for messages. */
  location: string;
  /** Calls the original (unwrapped) method on its instance. */
  invoke(args: unknown[]): Promise<unknown>;
}

/** The undo of a compensable step, found by the step's name. */
export interface RegisteredCompensation {
  stepName: string;
  location: string;
  /** Step options of the undo (its own @Step options when it has some). */
  meta: StepMetadata;
  /** Calls the undo method on its instance: undo(output, ...args). */
  undo(output: unknown, args: unknown[]): Promise<unknown>;
}

/** The workflows this process can execute, by (name, version). Filled by the explorer at onModuleInit. */
@Injectable()
export class WorkflowRegistry {
  private readonly compensations = new Map<string, RegisteredCompensation>();
  private readonly byKey = new Map<string, RegisteredWorkflow>();
  private readonly latestByName = new Map<string, RegisteredWorkflow>();
  /** Built once: claims read it on every poll, and the registry only changes at startup. */
  private servedPairs?: ServedPairs;

  add(workflow: RegisteredWorkflow): void {
    const key = this.key(workflow.name, workflow.version);
    const existing = this.byKey.get(key);
    if (existing) {
      throw new DuplicateWorkflowError(
        messages.duplicateWorkflow(workflow.name, workflow.version, existing.location, workflow.location),
      );
    }
    this.byKey.set(key, workflow);
    this.servedPairs = undefined;
    const latest = this.latestByName.get(workflow.name);
    if (!latest || compareVersions(workflow.version, latest.version) > 0)
      this.latestByName.set(workflow.name, workflow);
  }

  addCompensation(compensation: RegisteredCompensation): void {
    const existing = this.compensations.get(compensation.stepName);
    if (existing && existing.location !== compensation.location) {
      throw new InvalidArgumentError(
        messages.duplicateCompensableStep(compensation.stepName, existing.location, compensation.location),
      );
    }
    this.compensations.set(compensation.stepName, compensation);
  }

  get hasCompensations(): boolean {
    return this.compensations.size > 0;
  }

  compensation(stepName: string): RegisteredCompensation | undefined {
    return this.compensations.get(stepName);
  }

  get(name: string, version: string): RegisteredWorkflow | undefined {
    return this.byKey.get(this.key(name, version));
  }

  /** The newest registered version of a name: what new runs of it are started with. */
  latest(name: string): RegisteredWorkflow | undefined {
    return this.latestByName.get(name);
  }

  get size(): number {
    return this.byKey.size;
  }

  /** The (workflow, version) pairs this process claims, as parallel arrays for SQL unnest(). */
  served(): ServedPairs {
    if (!this.servedPairs) {
      const all = [...this.byKey.values()];
      this.servedPairs = {
        workflows: all.map((w) => w.name),
        versions: all.map((w) => w.version),
        maxStalls: all.map((w) => w.maxRecoveryAttempts),
      };
    }
    return this.servedPairs;
  }

  private key(name: string, version: string): string {
    return JSON.stringify([name, version]);
  }
}

/** Numeric when both versions are numbers, else lexical. */
export function compareVersions(a: string, b: string): number {
  const [x, y] = [Number(a), Number(b)];
  if (Number.isFinite(x) && Number.isFinite(y)) return x - y;
  return a < b ? -1 : a > b ? 1 : 0;
}
