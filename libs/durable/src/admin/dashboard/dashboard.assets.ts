/**
 * The dashboard's script and style, served by the admin module as files of its own (the pages' Content
 * Security Policy allows no inline script or style). The script confirms actions, and keeps counts and
 * a run's page live over server-sent events.
 */
export const DASHBOARD_SCRIPT = String.raw`'use strict';
(function () {
  var body = document.body;
  var base = body.getAttribute('data-base');
  var runId = body.getAttribute('data-run');
  var runStatus = body.getAttribute('data-status');
  var runUpdated = body.getAttribute('data-updated');
  var source = null;
  document.querySelectorAll('form[data-confirm]').forEach(function (form) {
    form.addEventListener('submit', function (event) {
      if (!window.confirm(form.getAttribute('data-confirm'))) return event.preventDefault();
      // A live reload now would cancel the navigation to the action's answer.
      if (source) source.close();
      source = null;
    });
  });
  if (!window.EventSource || !base) return;
  var live = document.getElementById('live');
  var url = base + '/api/events' + (runId ? '?run=' + encodeURIComponent(runId) : '');
  source = new EventSource(url);
  source.onopen = function () { if (live) { live.textContent = 'live'; live.className = 'live on'; } };
  source.onerror = function () { if (live) { live.textContent = 'reconnecting'; live.className = 'live off'; } };
  source.onmessage = function (message) {
    if (!source) return;
    var state = JSON.parse(message.data);
    Object.keys(state.counts).forEach(function (status) {
      var cell = document.querySelector('[data-count="' + status + '"]');
      if (!cell) return;
      var n = state.counts[status];
      cell.textContent = n >= state.cap ? n.toLocaleString('en-US') + '+' : n.toLocaleString('en-US');
    });
    if (runId && state.run && (state.run.status !== runStatus || state.run.updatedAt !== runUpdated)) {
      var editing = document.activeElement && /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName);
      if (!editing) window.location.reload();
      else if (live) live.textContent = 'changed: reload to see';
    }
  };
})();
`;

export const DASHBOARD_STYLE = String.raw`
:root { --fg: #1d2330; --muted: #667085; --line: #e4e7ec; --bg: #f8f9fb; --accent: #2f5bea; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; align-items: center; gap: 16px; padding: 10px 24px; background: #111827; color: #fff; }
header a { color: #fff; text-decoration: none; font-weight: 600; }
header .live { margin-left: auto; font-size: 12px; padding: 2px 8px; border-radius: 10px; background: #374151; }
header .live.on { background: #15803d; }
main { padding: 16px 24px 48px; max-width: 1400px; }
h1 { font-size: 20px; margin: 8px 0 12px; word-break: break-all; }
h2 { font-size: 16px; margin: 24px 0 8px; }
a { color: var(--accent); }
.counts { display: flex; gap: 8px; flex-wrap: wrap; margin-bottom: 16px; }
.counts a { display: block; min-width: 110px; padding: 8px 12px; background: #fff; border: 1px solid var(--line); border-radius: 8px; text-decoration: none; color: var(--fg); }
.counts a.selected { border-color: var(--accent); box-shadow: 0 0 0 1px var(--accent); }
.counts .n { display: block; font-size: 20px; font-weight: 600; }
form.filters { display: flex; flex-wrap: wrap; gap: 8px; align-items: end; margin-bottom: 12px; }
form.filters label, form.action label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); gap: 2px; }
input, select, textarea, button { font: inherit; padding: 5px 8px; border: 1px solid #cbd2dc; border-radius: 6px; background: #fff; }
button { background: var(--accent); color: #fff; border-color: var(--accent); cursor: pointer; }
button.danger { background: #b42318; border-color: #b42318; }
table { width: 100%; border-collapse: collapse; background: #fff; border: 1px solid var(--line); }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12px; color: var(--muted); font-weight: 600; background: #fbfbfd; }
td.id { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; word-break: break-all; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; background: #eef2f6; }
.s-succeeded { background: #dcfae6; color: #067647; } .s-failed { background: #fee4e2; color: #b42318; }
.s-cancelled { background: #eaecf0; color: #475467; } .s-running { background: #d1e9ff; color: #175cd3; }
.s-sleeping, .s-waiting { background: #fef0c7; color: #93370d; } .s-pending { background: #f4ebff; color: #6941c6; }
.s-retrying { background: #fef0c7; color: #b54708; }
.meta { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; background: #fff; border: 1px solid var(--line); padding: 12px; border-radius: 8px; }
.meta dt { color: var(--muted); } .meta dd { margin: 0; word-break: break-all; }
pre { margin: 4px 0; padding: 8px; background: #0f172a; color: #e2e8f0; border-radius: 6px; overflow: auto; max-height: 320px; font-size: 12px; white-space: pre-wrap; word-break: break-word; }
.error { border-left: 4px solid #b42318; background: #fff; padding: 8px 12px; margin: 8px 0; }
.error .message { font-weight: 600; color: #b42318; white-space: pre-wrap; word-break: break-word; }
.notice { padding: 8px 12px; border-radius: 6px; background: #dcfae6; margin-bottom: 12px; }
.notice.bad { background: #fee4e2; }
.actions { display: flex; flex-wrap: wrap; gap: 12px; }
form.action { display: flex; gap: 8px; align-items: end; background: #fff; border: 1px solid var(--line); padding: 8px; border-radius: 8px; }
.bar { height: 8px; background: var(--accent); border-radius: 4px; min-width: 2px; }
.muted { color: var(--muted); }
.pager { margin-top: 12px; }
details summary { cursor: pointer; color: var(--muted); }
`;
