import { RUN_STATUSES } from '../../interfaces';
import type { AdminRunFilter, AdminRunPage, AdminStatusCounts } from '../admin.interfaces';
import { formatTime, html } from './html';
import { countsBar, layout, runHref, statusBadge } from './layout';

/** The run list: counts, filters, one page of runs and a link to the next. */
export function renderRunsPage(
  base: string,
  counts: AdminStatusCounts,
  filter: AdminRunFilter,
  page: AdminRunPage,
  query: Record<string, string>,
  problem?: string,
): string {
  const field = (name: string) => query[name] ?? '';
  const nextQuery = page.next ? new URLSearchParams({ ...query, after: page.next }).toString() : undefined;
  const content = html` <h1>Runs</h1>
    ${countsBar(base, counts, filter.status)}
    <form class="filters" method="get" action="${base}">
      <label
        >Status<select name="status">
          <option value="">any</option>
          ${RUN_STATUSES.map((s) => html`<option value="${s}" ${field('status') === s ? html`selected` : ''}>${s}</option>`)}
        </select></label
      >
      <label>Workflow<input name="workflow" value="${field('workflow')}" size="16" /></label>
      <label>Version<input name="version" value="${field('version')}" size="5" /></label>
      <label>Id starts with<input name="idPrefix" value="${field('idPrefix')}" size="18" /></label>
      <label>Error contains<input name="errorText" value="${field('errorText')}" size="18" /></label>
      <label
        >Created after (UTC)<input type="datetime-local" name="createdAfter" value="${field('createdAfter')}"
      /></label>
      <label
        >Created before (UTC)<input
          type="datetime-local"
          name="createdBefore"
          value="${field('createdBefore')}"
      /></label>
      <button type="submit">Filter</button> <a href="${base}">clear</a>
    </form>
    ${problem ? html`<div class="notice bad">${problem}</div>` : ''}
    <table class="runs">
      <thead>
        <tr>
          <th>Run</th>
          <th>Workflow</th>
          <th>Status</th>
          <th>Attempts</th>
          <th>Created</th>
          <th>Updated</th>
          <th>Error</th>
        </tr>
      </thead>
      <tbody>
        ${
          page.runs.length === 0
            ? html`<tr>
                <td colspan="7" class="muted">
                  ${
                    page.next
                      ? 'No match among the runs searched on this page: the next page searches older ones.'
                      : 'No runs match.'
                  }
                </td>
              </tr>`
            : ''
        }
        ${page.runs.map(
          (run) =>
            html`<tr>
              <td class="id"><a href="${runHref(base, run.id)}">${run.id}</a></td>
              <td>${run.workflow} <span class="muted">v${run.version}</span></td>
              <td>
                ${statusBadge(run.status)}${run.compensating ? html` <span class="muted">compensating</span>` : ''}
              </td>
              <td>${run.attempts}</td>
              <td>${formatTime(run.createdAt)}</td>
              <td>${formatTime(run.updatedAt)}</td>
              <td>
                ${run.error ? html`<strong>${run.error.name}</strong>: ${run.error.message.slice(0, 160)}` : ''}
              </td>
            </tr>`,
        )}
      </tbody>
    </table>
    <p class="pager">
      ${nextQuery ? html`<a href="${base}?${nextQuery}" rel="next">Next page →</a>` : html`<span class="muted">End of the list.</span>`}
    </p>`;
  return layout({ base, title: 'Runs' }, content);
}
