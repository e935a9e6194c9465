import type { Tenant } from './tenant.entity';

const escape = (text: string) =>
  text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );

/**
 * The tenant page: a list of the stages the provisioning reached, appended live from the server-sent
 * events of GET /tenants/:id/events (the browser's EventSource reconnects by itself, with Last-Event-ID).
 */
export function tenantPage(tenant: Tenant): string {
  const id = escape(tenant.id);
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>${escape(tenant.name)}: provisioning</title>
<style>body{font:15px system-ui,sans-serif;margin:2rem;max-width:40rem}li{margin:.2rem 0}#status{font-weight:600}</style></head>
<body>
<h1>${escape(tenant.name)}</h1>
<p>${escape(tenant.plan)} plan, ${escape(tenant.region)}. Status: <span id="status">${escape(tenant.status)}</span></p>
<ol id="stages"></ol>
<script>
  const stages = document.getElementById('stages');
  const status = document.getElementById('status');
  const events = new EventSource('/tenants/${id}/events');
  events.addEventListener('progress', (e) => {
    const { stage, at } = JSON.parse(e.data);
    const li = document.createElement('li');
    li.textContent = stage + ' (' + new Date(at).toLocaleTimeString() + ')';
    stages.appendChild(li);
    if (stage === 'awaiting approval') status.textContent = 'awaiting_approval';
  });
  events.addEventListener('finished', (e) => {
    status.textContent = JSON.parse(e.data).tenant;
    events.close();
  });
</script>
</body>
</html>
`;
}
