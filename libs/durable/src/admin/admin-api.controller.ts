import { Body, Get, HttpCode, Inject, NotFoundException, Param, Post, Query, Sse } from '@nestjs/common';
import type { MessageEvent } from '@nestjs/common';
import type { Observable } from 'rxjs';
import { ActionBody, AdminActions } from './admin-actions';
import { AdminEventsService } from './admin-events.service';
import { parseAdminFilter, type AdminFilterQuery } from './admin-filter.parser';
import type { AdminRunDetail, AdminRunPage, AdminStatusCounts } from './admin.interfaces';
import { DURABLE_ADMIN_OPTIONS, type ResolvedAdminOptions } from './admin.options';
import { DurableAdminStore } from './admin.store';

/**
 * The admin JSON API, mounted at `<path>/api` by DurableAdminModule (with the app's guard):
 *   GET  runs?status=failed,cancelled&workflow=&version=&createdAfter=&createdBefore=&idPrefix=&errorText=&limit=&after=
 *   GET  counts                   runs per status (capped)
 *   GET  runs/:id                 the run, its steps, signals, parent and children
 *   POST runs/:id/cancel          { reason? }
 *   POST runs/:id/resume
 *   POST runs/:id/signal          { name, payload? }
 *   POST runs/:id/fork            { fromStep?, id? }  -> { id }
 *   GET  events?run=              server-sent events: counts (and the run's status) when they change
 */
export class AdminApiController {
  constructor(
    private readonly store: DurableAdminStore,
    private readonly actions: AdminActions,
    private readonly events: AdminEventsService,
    @Inject(DURABLE_ADMIN_OPTIONS) private readonly options: ResolvedAdminOptions,
  ) {}

  @Get('runs')
  listRuns(@Query() query: AdminFilterQuery): Promise<AdminRunPage> {
    return this.store.listRuns(parseAdminFilter(query));
  }

  @Get('counts')
  counts(): Promise<AdminStatusCounts> {
    return this.store.countByStatus(this.options.countCap);
  }

  @Get('runs/:id')
  async getRun(@Param('id') id: string): Promise<AdminRunDetail> {
    const run = await this.store.getRun(id);
    if (!run) throw new NotFoundException(`No run with id "${id}".`);
    return run;
  }

  @Post('runs/:id/cancel')
  @HttpCode(200)
  async cancel(@Param('id') id: string, @Body() body: ActionBody): Promise<{ cancelled: boolean }> {
    return { cancelled: await this.actions.cancel(id, body) };
  }

  @Post('runs/:id/resume')
  @HttpCode(200)
  async resume(@Param('id') id: string): Promise<{ resumed: true }> {
    await this.actions.resume(id);
    return { resumed: true };
  }

  @Post('runs/:id/signal')
  @HttpCode(200)
  async signal(@Param('id') id: string, @Body() body: ActionBody): Promise<{ sent: true }> {
    await this.actions.signal(id, body, false);
    return { sent: true };
  }

  @Post('runs/:id/fork')
  @HttpCode(201)
  async fork(@Param('id') id: string, @Body() body: ActionBody): Promise<{ id: string }> {
    return { id: await this.actions.fork(id, body) };
  }

  @Sse('events')
  live(@Query('run') run?: string): Observable<MessageEvent> {
    return this.events.stream(typeof run === 'string' && run !== '' ? run : undefined);
  }
}
