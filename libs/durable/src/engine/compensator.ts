import { Injectable, Logger } from '@nestjs/common';
import { messages } from '../durable.messages';
import { StepStore } from '../persistence/step.store';
import { decodeJson } from '../persistence/json-codec';
import { WorkflowRegistry } from '../workflow.registry';
import { RunExecution } from './run-execution';
import { CheckpointWriter } from './checkpoint.writer';
import { StepRunner } from './step.runner';

/**
 * Runs the compensations of a failed or cancelled run: the undo of every succeeded compensable step,
 * newest first, each as a durable step `$undo:<key>` (replayed if already done, so a crash midway
 * resumes where it stopped). A failing undo is recorded and the others still run.
 */
@Injectable()
export class Compensator {
  private readonly logger = new Logger('Durable');

  constructor(
    private readonly store: StepStore,
    private readonly checkpoints: CheckpointWriter,
    private readonly registry: WorkflowRegistry,
    private readonly steps: StepRunner,
  ) {}

  async compensate(execution: RunExecution): Promise<void> {
    execution.compensating = true;
    const history = await this.checkpoints.retrying(execution, 'a history read', () =>
      this.store.loadSteps(execution.runId),
    );
    const done = history.filter(
      (step) => step.kind === 'step' && step.status === 'succeeded' && step.undo_args != null,
    );
    for (const step of done.reverse()) {
      const compensation = this.registry.compensation(step.name);
      if (!compensation) {
        this.logger.error(messages.compensationUnknown(execution.runId, step.key));
        continue;
      }
      const output = decodeJson(step.output);
      const args = decodeJson(step.undo_args) as unknown[];
      try {
        await this.steps.run(execution, { ...compensation.meta, name: `$undo:${step.key}` }, () =>
          compensation.undo(output, args),
        );
      } catch (error) {
        execution.throwIfHalted();
        this.logger.warn(
          messages.compensationFailed(execution.runId, step.key, (error as Error)?.message ?? String(error)),
        );
      }
    }
  }
}
