import { RUN_STATUSES } from '../../interfaces';
import type { AdminStatusCounts } from '../admin.interfaces';
import { html, SafeHtml } from './html';

/** Content-Security-Policy of every page: no inline script or style, nothing from elsewhere. */
export const DASHBOARD_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
  "form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

export interface PageFrame {
  /** URL path of the dashboard, e.g. '/durable'. */
  base: string;
  title: string;
  /** Set on a run's page: the live refresh watches this run. */
  run?: { id: string; status: string; updatedAt: Date };
}

/** The whole document around a page's content. */
export function layout(frame: PageFrame, content: SafeHtml): string {
  const run = frame.run;
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>${frame.title} · nest-durable</title>
        <link rel="stylesheet" href="${frame.base}/assets/dashboard.css" />
        <script src="${frame.base}/assets/dashboard.js" defer></script>
      </head>
      <body
        data-base="${frame.base}"
        data-run="${run?.id}"
        data-status="${run?.status}"
        data-updated="${run?.updatedAt.toISOString()}"
      >
        <header>
          <a href="${frame.base}">nest-durable</a><span class="muted">runs</span
          ><span id="live" class="live">connecting</span>
        </header>
        <main>${content}</main>
      </body>
    </html>`.value;
}

/** The status counts, each a link to the runs of that status. */
export function countsBar(base: string, counts: AdminStatusCounts, selected?: string[]): SafeHtml {
  return html`<nav class="counts" aria-label="Runs by status">
    ${RUN_STATUSES.map((status) => {
      const n = counts.counts[status];
      const label = n >= counts.cap ? `${n.toLocaleString('en-US')}+` : n.toLocaleString('en-US');
      const chosen = selected?.length === 1 && selected[0] === status;
      return html`<a href="${base}?status=${status}" class="${chosen ? 'selected' : ''}"
        ><span class="badge s-${status}">${status}</span
        ><span class="n" data-count="${status}">${label}</span></a
      >`;
    })}
  </nav>`;
}

export function statusBadge(status: string): SafeHtml {
  return html`<span class="badge s-${status}">${status}</span>`;
}

/** Link to a run's page; the id is URL-encoded, then escaped. */
export function runHref(base: string, id: string): string {
  return `${base}/runs/${encodeURIComponent(id)}`;
}
