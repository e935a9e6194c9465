import { Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { SCHEDULE_METADATA, STEP_METADATA, WORKFLOW_METADATA } from './durable.constants';
import type { StepMetadata, WorkflowMetadata } from './decorators';
import type { ScheduleMetadata } from './schedules/schedule.decorator';

/** The one reader of @Workflow/@Step metadata. */
@Injectable()
export class DurableMetadataAccessor {
  constructor(private readonly reflector: Reflector) {}

  getWorkflowMetadata(target: object): WorkflowMetadata | undefined {
    return this.reflector.get<WorkflowMetadata | undefined>(WORKFLOW_METADATA, target as () => void);
  }

  getStepMetadata(target: object): StepMetadata | undefined {
    return this.reflector.get<StepMetadata | undefined>(STEP_METADATA, target as () => void);
  }

  getScheduleMetadata(target: object): ScheduleMetadata[] | undefined {
    return this.reflector.get<ScheduleMetadata[] | undefined>(SCHEDULE_METADATA, target as () => void);
  }
}
