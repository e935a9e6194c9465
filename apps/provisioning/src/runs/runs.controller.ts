import { Controller, Get, NotFoundException, Param, Query } from '@nestjs/common';
import { DurableClient, RUN_STATUSES, RunStatus } from 'nest-durable';
import { Transform, Type } from 'class-transformer';
import { ArrayNotEmpty, IsIn, IsInt, IsOptional, IsString, Length, Max, Min } from 'class-validator';

/** GET /runs?status=failed,waiting&workflow=provisionTenant&limit=50&after=<next> */
export class ListRunsQueryDto {
  @IsOptional()
  @Transform(({ value }) => (typeof value === 'string' ? value.split(',').map((s) => s.trim()) : value))
  @ArrayNotEmpty()
  @IsIn(RUN_STATUSES, {
    each: true,
    message: `status must be a comma-separated list of: ${RUN_STATUSES.join(', ')}`,
  })
  status?: RunStatus[];

  @IsOptional()
  @IsString()
  @Length(1, 200)
  workflow?: string;

  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(1000)
  limit?: number;

  @IsOptional()
  @IsString()
  @Length(1, 500)
  after?: string;
}

/**
 * For operators: the durable runs of this app (any workflow), newest first, with a cursor, and one run
 * with its steps. The dashboard (/durable) shows the same and more.
 */
@Controller('runs')
export class RunsController {
  constructor(private readonly durable: DurableClient) {}

  @Get()
  async list(@Query() query: ListRunsQueryDto) {
    const page = await this.durable.list({
      status: query.status,
      workflow: query.workflow,
      limit: query.limit ?? 100,
      after: query.after,
    });
    return {
      runs: page.runs.map((run) => ({
        id: run.id,
        workflow: run.workflow,
        version: run.version,
        status: run.status,
        attempts: run.attempts,
        tenantId: (run.input?.[0] as { tenantId?: string } | undefined)?.tenantId ?? null,
        error: run.error ? { name: run.error.name, message: run.error.message } : null,
        createdAt: run.createdAt,
        updatedAt: run.updatedAt,
      })),
      next: page.next ?? null,
    };
  }

  /** GET /runs/:id: the run with its steps (attempts, timings, errors, outputs). */
  @Get(':id')
  async get(@Param('id') id: string) {
    const run = await this.durable.status(id);
    if (!run) throw new NotFoundException(`No run with id "${id}".`);
    return {
      ...run,
      steps: run.steps.map((step) => ({
        ...step,
        durationMs: step.finishedAt ? step.finishedAt.getTime() - step.startedAt.getTime() : null,
      })),
    };
  }
}
