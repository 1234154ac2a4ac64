// A single static page; all data comes from /admin/api/* with the admin token the operator types.
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Withdraw system: jobs and health</title>
<style>
body{font:14px system-ui,sans-serif;margin:1.5rem;color:#222}h1{font-size:1.3rem}h2{font-size:1.05rem;margin-top:1.6rem}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #ddd;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f4f4f4}.cards{display:flex;gap:1rem;flex-wrap:wrap}.card{border:1px solid #ddd;border-radius:6px;padding:.6rem .9rem;min-width:11rem}
.bad{color:#b00020;font-weight:600}code{font-size:12px;word-break:break-all}button{cursor:pointer}#err{color:#b00020}
</style></head><body>
<h1>Withdraw system</h1>
<p><label>Admin token <input id="token" type="password" size="48"></label> <button id="save">Use</button>
<button id="refresh">Refresh</button> <span id="err"></span></p>
<div class="cards" id="cards"></div>
<h2>Jobs by task</h2><table id="tasks"></table>
<h2>Jobs <select id="state"><option>failed</option><option>retrying</option><option>running</option><option>queued</option></select>
<button id="retryAll">Retry all shown</button></h2><table id="jobs"></table>
<h2>Open reconciliation breaks</h2><table id="breaks"></table>
<h2>Workers</h2><table id="workers"></table>
<script>
const $ = (id) => document.getElementById(id);
const esc = (v) => String(v ?? '').replace(/[&<>"']/g, (c) => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c]));
$('token').value = sessionStorage.getItem('adminToken') || '';
async function api(path, init = {}) {
  const r = await fetch(path, { ...init, headers: { 'content-type': 'application/json', authorization: 'Bearer ' + $('token').value } });
  const body = await r.json();
  if (body.code !== 0) throw new Error(body.msg);
  return body.data;
}
function table(el, rows, cols) {
  el.innerHTML = '<tr>' + cols.map((c) => '<th>' + esc(c[0]) + '</th>').join('') + '</tr>' +
    rows.map((r) => '<tr>' + cols.map((c) => '<td>' + c[1](r) + '</td>').join('') + '</tr>').join('');
}
let shownJobs = [];
async function refresh() {
  $('err').textContent = '';
  try {
    const o = await api('/admin/api/overview');
    const lag = (x) => x.unrelayed + (x.oldestAgeSeconds ? ' (oldest ' + x.oldestAgeSeconds.toFixed(1) + ' s)' : '');
    $('cards').innerHTML = [
      ['Balance outbox lag', lag(o.outbox.balance), o.outbox.balance.oldestAgeSeconds > 60],
      ['Ledger outbox lag', lag(o.outbox.ledger), o.outbox.ledger.oldestAgeSeconds > 60],
      ['Callbacks pending', o.inbox.pending, o.inbox.pending > 1000],
      ['Open orders', JSON.stringify(o.openOrders), false],
      ['Manual review', o.openOrders.manual || 0, (o.openOrders.manual || 0) > 0],
      ['Open breaks', JSON.stringify(o.openBreaks), Object.keys(o.openBreaks).length > 0],
    ].map(([k, v, bad]) => '<div class="card"><div>' + esc(k) + '</div><div class="' + (bad ? 'bad' : '') + '">' + esc(v) + '</div></div>').join('');
    table($('tasks'), o.jobs, [['task', (r) => esc(r.task)], ['queued', (r) => r.queued], ['running', (r) => r.running],
      ['retrying', (r) => r.retrying], ['failed', (r) => '<span class="' + (r.failed ? 'bad' : '') + '">' + r.failed + '</span>']]);
    table($('workers'), o.workers, [['worker', (r) => esc(r.workerId)], ['host', (r) => esc(r.hostname + ':' + r.pid)], ['last seen', (r) => esc(r.lastSeenAt)]]);
    const j = await api('/admin/api/jobs?state=' + $('state').value);
    shownJobs = j.jobs.map((x) => x.id);
    table($('jobs'), j.jobs, [['id', (r) => esc(r.id)], ['task', (r) => esc(r.task)], ['attempts', (r) => r.attempts + '/' + r.maxAttempts],
      ['run at', (r) => esc(r.runAt)], ['last error', (r) => '<code>' + esc(r.lastError) + '</code>'],
      ['', (r) => '<button data-id="' + esc(r.id) + '">retry</button>']]);
    const b = await api('/admin/api/breaks');
    table($('breaks'), b.breaks, [['category', (r) => esc(r.category)], ['subject', (r) => esc(r.subject)], ['expected', (r) => esc(r.expected)],
      ['actual', (r) => esc(r.actual)], ['first seen', (r) => esc(r.firstSeenAt)], ['seen', (r) => r.seenCount]]);
  } catch (e) { $('err').textContent = e.message; }
}
async function retry(ids) { if (ids.length) { await api('/admin/api/jobs/retry', { method: 'POST', body: JSON.stringify({ jobIds: ids }) }); refresh(); } }
$('jobs').addEventListener('click', (e) => { const id = e.target.dataset && e.target.dataset.id; if (id) retry([id]); });
$('retryAll').onclick = () => retry(shownJobs);
$('save').onclick = () => { sessionStorage.setItem('adminToken', $('token').value); refresh(); };
$('refresh').onclick = refresh; $('state').onchange = refresh;
if ($('token').value) refresh();
setInterval(() => { if ($('token').value) refresh(); }, 5000);
</script></body></html>`;
