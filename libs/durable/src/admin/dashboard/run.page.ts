import type { ErrorInfo } from '../../interfaces';
import type { AdminRunDetail, AdminRunSummary, AdminStep } from '../admin.interfaces';
import { formatDuration, formatTime, html, preview, SafeHtml } from './html';
import { layout, runHref, statusBadge } from './layout';

/** Outcome of an action, shown above the run (fixed texts: nothing from the query string is echoed). */
export const ACTION_NOTICES: Record<string, string> = {
  cancelled: 'The run was cancelled.',
  resumed: 'The run was put back in the queue: it resumes from the step that failed it.',
  signalled: 'The signal was sent.',
  forked: 'This run is a fork: its history was copied up to the chosen step.',
};

const FINISHED = new Set(['succeeded', 'failed', 'cancelled']);

/** A run's page: its facts, error, actions, the timeline of its steps, signals and related runs. */
export function renderRunPage(
  base: string,
  run: AdminRunDetail,
  notice?: { text: string; bad?: boolean },
): string {
  const content = html` <p><a href="${base}">← all runs</a></p>
    <h1>${run.id}</h1>
    ${notice ? html`<div class="notice ${notice.bad ? 'bad' : ''}" role="status">${notice.text}</div>` : ''}
    <dl class="meta">
      <dt>Status</dt>
      <dd>
        ${statusBadge(run.status)}${run.compensating ? html` <span class="muted">compensating</span>` : ''}
      </dd>
      <dt>Workflow</dt>
      <dd>${run.workflow} <span class="muted">version ${run.version}</span></dd>
      <dt>Attempts</dt>
      <dd>${run.attempts} <span class="muted">(claims; epoch ${run.epoch})</span></dd>
      <dt>Created</dt>
      <dd>${formatTime(run.createdAt)}</dd>
      <dt>Updated</dt>
      <dd>${formatTime(run.updatedAt)}</dd>
      ${
        run.status === 'sleeping' || run.status === 'waiting'
          ? html`<dt>Wakes at</dt>
              <dd>${formatTime(run.availableAt)}</dd>`
          : ''
      }
      ${
        run.waitingFor.length > 0
          ? html`<dt>Waiting for</dt>
              <dd>${run.waitingFor.join(', ')}</dd>`
          : ''
      }
      ${
        run.deadline
          ? html`<dt>Deadline</dt>
              <dd>${formatTime(run.deadline)}</dd>`
          : ''
      }
      ${
        run.executor
          ? html`<dt>Executor</dt>
              <dd>${run.executor}</dd>`
          : ''
      }
      ${
        run.failedStep
          ? html`<dt>Failed at step</dt>
              <dd>${run.failedStep}</dd>`
          : ''
      }
      ${
        run.parent
          ? html`<dt>Parent run</dt>
              <dd>
                <a href="${runHref(base, run.parent.id)}">${run.parent.id}</a>
                ${statusBadge(run.parent.status)}
              </dd>`
          : ''
      }
    </dl>
    ${
      run.fullError
        ? html`<h2>Error</h2>
            ${errorBlock(run.fullError)}`
        : ''
    }
    <h2>Actions</h2>
    ${actions(base, run)}
    <h2>Timeline</h2>
    ${timeline(run.steps)}
    <h2>Input</h2>
    <pre>${preview(run.input, 4_000)}</pre>
    ${
      run.status === 'succeeded'
        ? html`<h2>Output</h2>
            <pre>${preview(run.output, 4_000)}</pre>`
        : ''
    }
    <h2>Signals</h2>
    ${
      run.signals.length === 0
        ? html`<p class="muted">No signals.</p>`
        : html`<table>
            <thead>
              <tr>
                <th>#</th>
                <th>Name</th>
                <th>Sent</th>
                <th>State</th>
                <th>Payload</th>
              </tr>
            </thead>
            <tbody>
              ${run.signals.map(
                (signal) =>
                  html`<tr>
                    <td>${signal.id}</td>
                    <td>${signal.name}</td>
                    <td>${formatTime(signal.sentAt)}</td>
                    <td>
                      ${signal.consumedBy ? html`consumed by <code>${signal.consumedBy}</code>` : html`<span class="badge s-pending">pending</span>`}
                    </td>
                    <td><pre>${preview(signal.payload, 500)}</pre></td>
                  </tr>`,
              )}
            </tbody>
          </table>`
    }
    <h2>Child runs</h2>
    ${run.children.length === 0 ? html`<p class="muted">None.</p>` : relatedRuns(base, run.children)}`;
  return layout(
    { base, title: `Run ${run.id}`, run: { id: run.id, status: run.status, updatedAt: run.updatedAt } },
    content,
  );
}

function errorBlock(error: ErrorInfo): SafeHtml {
  return html`<div class="error">
    <div class="message">${error.name}${error.code ? ` [${error.code}]` : ''}: ${error.message}</div>
    ${
      error.stack
        ? html`<details>
            <summary>stack</summary>
            <pre>${error.stack}</pre>
          </details>`
        : ''
    }
  </div>`;
}

function actions(base: string, run: AdminRunDetail): SafeHtml {
  const href = runHref(base, run.id);
  const finished = FINISHED.has(run.status);
  const forkable = run.steps.filter((step) => !step.compensation);
  return html`<div class="actions">
    ${
      run.status === 'failed' || run.status === 'cancelled'
        ? html`<form
            class="action"
            method="post"
            action="${href}/resume"
            data-confirm="Resume this run? The step that failed it executes again."
          >
            <button type="submit" name="action" value="resume">Resume</button>
          </form>`
        : ''
    }
    ${
      !finished
        ? html`<form
              class="action"
              method="post"
              action="${href}/cancel"
              data-confirm="Cancel this run (and its child runs)?"
            >
              <label>Reason<input name="reason" maxlength="2000" placeholder="optional" /></label>
              <button type="submit" class="danger">Cancel run</button>
            </form>
            <form
              class="action"
              method="post"
              action="${href}/signal"
              data-confirm="Send this signal to the run?"
            >
              <label
                >Signal<input
                  name="name"
                  required
                  maxlength="200"
                  value="${run.waitingFor.find((name) => !name.startsWith('$child:')) ?? ''}"
              /></label>
              <label
                >Payload (JSON)<textarea name="payload" rows="1" cols="24" placeholder="null"></textarea>
              </label>
              <button type="submit">Send signal</button>
            </form>`
        : ''
    }
    <form
      class="action"
      method="post"
      action="${href}/fork"
      data-confirm="Start a new run from the chosen step? This run is not changed."
    >
      <label
        >Fork from step<select name="fromStep">
          <option value="">the start (copy nothing)</option>
          ${forkable.map((step) => html`<option value="${step.key}" ${step.key === run.failedStep ? html`selected` : ''}>${step.key}</option>`)}
        </select></label
      >
      <label>New run id<input name="id" maxlength="200" placeholder="random" /></label>
      <button type="submit">Fork</button>
    </form>
  </div>`;
}

function timeline(steps: AdminStep[]): SafeHtml {
  if (steps.length === 0)
    return html`<p class="muted">No step recorded yet (a step still executing has no row).</p>`;
  const durations = steps.map((step) => (step.finishedAt ?? new Date()).getTime() - step.startedAt.getTime());
  const longest = Math.max(1, ...durations);
  return html`<table class="timeline">
    <thead>
      <tr>
        <th>#</th>
        <th>Step</th>
        <th>Kind</th>
        <th>Status</th>
        <th>Attempts</th>
        <th>Started</th>
        <th>Duration</th>
        <th>Wake / timeout</th>
        <th>Outcome</th>
      </tr>
    </thead>
    <tbody>
      ${steps.map((step, i) => {
        const finished = step.finishedAt !== null;
        return html`<tr data-step="${step.key}">
          <td>${step.seq}</td>
          <td class="id">
            ${step.key}${step.compensation ? html` <span class="muted">(compensation)</span>` : ''}
          </td>
          <td>${step.kind}</td>
          <td>${statusBadge(step.status)}</td>
          <td>${step.attempts}</td>
          <td>${formatTime(step.startedAt)}</td>
          <td>
            ${finished ? formatDuration(durations[i]) : html`<span class="muted">${formatDuration(durations[i])} so far</span>`}
            <progress max="${longest}" value="${durations[i]}"></progress>
          </td>
          <td>${step.wakeAt ? formatTime(step.wakeAt) : ''}</td>
          <td>
            ${step.error ? errorBlock(step.error) : ''}${
              step.output !== undefined && step.kind !== 'sleep'
                ? html`<details>
                    <summary>output</summary>
                    <pre>${preview(step.output)}</pre>
                  </details>`
                : ''
            }
          </td>
        </tr>`;
      })}
    </tbody>
  </table>`;
}

function relatedRuns(base: string, runs: AdminRunSummary[]): SafeHtml {
  return html`<table>
    <thead>
      <tr>
        <th>Run</th>
        <th>Workflow</th>
        <th>Status</th>
        <th>Created</th>
      </tr>
    </thead>
    <tbody>
      ${runs.map(
        (run) =>
          html`<tr>
            <td class="id"><a href="${runHref(base, run.id)}">${run.id}</a></td>
            <td>${run.workflow}</td>
            <td>${statusBadge(run.status)}</td>
            <td>${formatTime(run.createdAt)}</td>
          </tr>`,
      )}
    </tbody>
  </table>`;
}
