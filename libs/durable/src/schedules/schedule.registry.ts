import { Injectable } from '@nestjs/common';
import { messages } from '../durable.messages';
import { InvalidArgumentError } from '../errors';
import { defineSchedule, ScheduleDefinition } from './schedule-definition';
import type { ScheduleMetadata } from './schedule.decorator';

/** The @Schedule declarations of this process, by schedule name. Filled by the explorer at onModuleInit. */
@Injectable()
export class ScheduleRegistry {
  private readonly byName = new Map<string, { definition: ScheduleDefinition; location: string }>();

  add(workflow: string, location: string, schedules: ScheduleMetadata[]): void {
    for (const { cron, options } of schedules) {
      const definition = defineSchedule(workflow, cron, options);
      const existing = this.byName.get(definition.name);
      if (existing) {
        throw new InvalidArgumentError(
          messages.duplicateSchedule(definition.name, existing.location, location),
        );
      }
      this.byName.set(definition.name, { definition, location });
    }
  }

  definitions(): ScheduleDefinition[] {
    return [...this.byName.values()].map((entry) => entry.definition);
  }
}
