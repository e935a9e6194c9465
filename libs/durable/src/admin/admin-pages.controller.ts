import { Body, Get, Inject, Param, Post, Query, Req, Res } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { DurableError } from '../errors';
import { ActionBody, AdminActions } from './admin-actions';
import { ADMIN_ERROR_STATUS } from './admin-errors.filter';
import { parseAdminFilter } from './admin-filter.parser';
import type { AdminRunPage } from './admin.interfaces';
import { DURABLE_ADMIN_OPTIONS, type ResolvedAdminOptions } from './admin.options';
import { DurableAdminStore } from './admin.store';
import { DASHBOARD_SCRIPT, DASHBOARD_STYLE } from './dashboard/dashboard.assets';
import { html } from './dashboard/html';
import { DASHBOARD_CSP, layout, runHref } from './dashboard/layout';
import { ACTION_NOTICES, renderRunPage } from './dashboard/run.page';
import { renderRunsPage } from './dashboard/runs.page';

type Action = 'cancel' | 'resume' | 'signal' | 'fork';
const DONE: Record<Action, string> = {
  cancel: 'cancelled',
  resume: 'resumed',
  signal: 'signalled',
  fork: 'forked',
};

/**
 * The dashboard, server-rendered (every value escaped), mounted at `<path>` by DurableAdminModule:
 * the run list with counts and filters, a run's page, and the actions as forms (confirmed in the
 * browser, answered with a redirect to the run's page).
 */
export class AdminPagesController {
  private readonly path: string;

  constructor(
    private readonly store: DurableAdminStore,
    private readonly actions: AdminActions,
    private readonly adapterHost: HttpAdapterHost,
    @Inject(DURABLE_ADMIN_OPTIONS) private readonly options: ResolvedAdminOptions,
  ) {
    this.path = `/${options.path}`;
  }

  /** The dashboard's URL path as requested, so links also work under the app's global prefix. */
  private baseOf(req: unknown): string {
    const { originalUrl, url } = req as { originalUrl?: string; url?: string };
    const requested = (originalUrl ?? url ?? '').split('?')[0];
    let at = requested.indexOf(this.path);
    while (at >= 0) {
      const rest = requested.slice(at + this.path.length);
      if (rest === '' || rest === '/' || rest.startsWith('/runs/'))
        return requested.slice(0, at + this.path.length);
      at = requested.indexOf(this.path, at + 1);
    }
    return this.path;
  }

  @Get()
  async runs(
    @Query() query: Record<string, unknown>,
    @Req() req: unknown,
    @Res() res: unknown,
  ): Promise<void> {
    const text = Object.fromEntries(
      Object.entries(query).filter(
        (entry): entry is [string, string] => typeof entry[1] === 'string' && entry[1] !== '',
      ),
    );
    const counts = await this.store.countByStatus(this.options.countCap);
    let page: AdminRunPage = { runs: [] };
    let problem: string | undefined;
    let filter = {};
    try {
      filter = parseAdminFilter(text);
      page = await this.store.listRuns(filter);
    } catch (error) {
      if (!(error instanceof DurableError)) throw error;
      problem = error.message;
    }
    this.send(
      res,
      problem ? 400 : 200,
      renderRunsPage(this.baseOf(req), counts, filter, page, text, problem),
    );
  }

  @Get('runs/:id')
  async run(
    @Param('id') id: string,
    @Query('done') done: unknown,
    @Req() req: unknown,
    @Res() res: unknown,
  ): Promise<void> {
    const notice =
      typeof done === 'string' && ACTION_NOTICES[done] ? { text: ACTION_NOTICES[done] } : undefined;
    await this.showRun(this.baseOf(req), res, id, 200, notice);
  }

  @Post('runs/:id/:action')
  async act(
    @Param('id') id: string,
    @Param('action') action: string,
    @Body() body: ActionBody,
    @Req() req: unknown,
    @Res() res: unknown,
  ): Promise<void> {
    const base = this.baseOf(req);
    try {
      let target = id;
      if (action === 'cancel') await this.actions.cancel(id, body);
      else if (action === 'resume') await this.actions.resume(id);
      else if (action === 'signal') await this.actions.signal(id, body, true);
      else if (action === 'fork') target = await this.actions.fork(id, body);
      else return this.send(res, 404, this.notFound(base, `No action "${action}".`));
      const adapter = this.adapterHost.httpAdapter;
      adapter.redirect(res, 303, `${runHref(base, target)}?done=${DONE[action as Action]}`);
    } catch (error) {
      if (!(error instanceof DurableError)) throw error;
      await this.showRun(base, res, id, ADMIN_ERROR_STATUS[error.code] ?? 500, {
        text: error.message,
        bad: true,
      });
    }
  }

  @Get('assets/dashboard.js')
  script(@Res() res: unknown): void {
    this.send(res, 200, DASHBOARD_SCRIPT, 'text/javascript; charset=utf-8');
  }

  @Get('assets/dashboard.css')
  style(@Res() res: unknown): void {
    this.send(res, 200, DASHBOARD_STYLE, 'text/css; charset=utf-8');
  }

  private async showRun(
    base: string,
    res: unknown,
    id: string,
    status: number,
    notice?: { text: string; bad?: boolean },
  ): Promise<void> {
    const run = await this.store.getRun(id);
    if (!run) return this.send(res, 404, this.notFound(base, `No run with id "${id}".`));
    this.send(res, status, renderRunPage(base, run, notice));
  }

  private notFound(base: string, message: string): string {
    return layout(
      { base, title: 'Not found' },
      html`<h1>Not found</h1>
        <p>${message}</p>
        <p><a href="${base}">All runs</a></p>`,
    );
  }

  private send(res: unknown, status: number, body: string, type = 'text/html; charset=utf-8'): void {
    const adapter = this.adapterHost.httpAdapter;
    adapter.setHeader(res, 'Content-Type', type);
    adapter.setHeader(res, 'Content-Security-Policy', DASHBOARD_CSP);
    adapter.setHeader(res, 'X-Content-Type-Options', 'nosniff');
    adapter.setHeader(res, 'Cache-Control', 'no-store');
    adapter.setHeader(res, 'Referrer-Policy', 'same-origin');
    adapter.reply(res, body, status);
  }
}
