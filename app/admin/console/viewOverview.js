// The overview: every number links to the list behind it; two charts (uPlot, served by the app).
import { age, api, h, link, table, when } from './consoleDom.js';

const STATUS_COLORS = { init: '#8c8c8c', processing: '#2f6fdf', manual: '#d98c00', success: '#1f9d55', failed: '#c4302b' };
const SERIES_COLORS = { accepted: '#2f6fdf', success: '#1f9d55', failed: '#c4302b', manual: '#d98c00' };

function card(title, value, href, options = {}) {
  return h(
    'div',
    { class: `card${options.bad ? ' bad' : ''}`, dataset: { card: options.key ?? title } },
    h('div', { class: 'card-title' }, title),
    h('a', { href, class: 'card-value' }, String(value)),
    options.note ? h('div', { class: 'card-note' }, options.note) : null,
  );
}

/** [[x...], [y...] per series] from rows keyed by time and series name. */
function columns(rows, timeKey, seriesKey, names, stepMs, count, endMs) {
  const start = endMs - (count - 1) * stepMs;
  const xs = Array.from({ length: count }, (_, i) => (start + i * stepMs) / 1000);
  const index = new Map(xs.map((x, i) => [x * 1000, i]));
  const ys = names.map(() => new Array(count).fill(0));
  for (const row of rows) {
    const i = index.get(row[timeKey]);
    const s = names.indexOf(row[seriesKey]);
    if (i !== undefined && s >= 0) ys[s][i] = row.count;
  }
  return [xs, ...ys];
}

function chart(title, data, names, colors, testId) {
  const holder = h('div', { class: 'chart', 'data-chart': testId }, h('h3', null, title));
  const uPlot = window.uPlot;
  if (!uPlot) {
    holder.append(h('p', { class: 'error' }, 'the chart library did not load'));
    return holder;
  }
  const opts = {
    width: Math.max(320, Math.min(640, (document.getElementById('main')?.clientWidth ?? 900) / 2 - 40)),
    height: 220,
    series: [{}, ...names.map((name) => ({ label: name, stroke: colors[name], width: 2, points: { show: false } }))],
    axes: [{}, { size: 50 }],
    scales: { x: { time: true } },
  };
  // explicit width and height: uPlot needs no layout, so it draws into the holder before it is shown
  new uPlot(opts, data, holder);
  const totals = names.map((name, i) => `${name} ${data[i + 1].reduce((a, b) => a + b, 0)}`).join(' · ');
  holder.append(h('p', { class: 'chart-totals' }, totals));
  return holder;
}

export async function overviewView(ctx) {
  const { data: o } = await api('/admin/console/api/overview', { background: ctx.background });
  const now = Date.now();
  const hourEnd = Math.floor(now / 3_600_000) * 3_600_000;
  const minuteEnd = Math.floor(now / 60_000) * 60_000;
  const statuses = ['init', 'processing', 'manual', 'success', 'failed'];
  const failedJobs = o.jobs.reduce((sum, row) => sum + row.failed, 0);
  const retrying = o.jobs.reduce((sum, row) => sum + row.retrying, 0);
  const breaksOpen = o.openBreaks.reduce((sum, row) => sum + row.count, 0);
  const oldBreaks = o.openBreaks.filter((row) => row.ageBucket !== '<1h').reduce((sum, row) => sum + row.count, 0);
  const alive = o.workers.filter((w) => w.alive).length;
  const lag = (x) => `${x.unrelayed}`;
  return h(
    'section',
    { id: 'overview' },
    h('h2', null, 'Overview'),
    h(
      'div',
      { class: 'cards' },
      card('Manual review', o.openOrders.manual ?? 0, '#/review', { bad: (o.openOrders.manual ?? 0) > 0, key: 'manual' }),
      card('Processing', o.openOrders.processing ?? 0, '#/orders?status=processing', { key: 'processing' }),
      card('Init', o.openOrders.init ?? 0, '#/orders?status=init', { key: 'init' }),
      card('Failed jobs', failedJobs, '#/jobs?state=failed', { bad: failedJobs > 0, key: 'failed-jobs', note: `${retrying} retrying` }),
      card('Pending approvals', o.pendingApprovals, '#/approvals', { bad: o.pendingApprovals > 0, key: 'approvals' }),
      card('Open breaks', breaksOpen, '#/breaks', { bad: oldBreaks > 0, key: 'breaks', note: `${oldBreaks} older than 1 h` }),
      card('Balance outbox lag', lag(o.outbox.balance), '#/outbox?db=balance', {
        bad: (o.outbox.balance.oldestAgeSeconds ?? 0) > 60,
        key: 'outbox-balance',
        note: `oldest ${age(o.outbox.balance.oldestAgeSeconds)}`,
      }),
      card('Ledger outbox lag', lag(o.outbox.ledger), '#/outbox?db=ledger', {
        bad: (o.outbox.ledger.oldestAgeSeconds ?? 0) > 60,
        key: 'outbox-ledger',
        note: `oldest ${age(o.outbox.ledger.oldestAgeSeconds)}`,
      }),
      card('Callbacks pending', o.callbacks.pending, '#/callbacks', {
        bad: (o.callbacks.oldestAgeSeconds ?? 0) > 60,
        key: 'callbacks',
        note: `oldest ${age(o.callbacks.oldestAgeSeconds)}`,
      }),
      card('Provider error rate', `${(o.provider.errorRate * 100).toFixed(1)}%`, '#/provider-calls?result=unknown', {
        bad: o.provider.errorRate > 0.05,
        key: 'provider',
        note: `${o.provider.unknown} unknown, ${o.provider.rejected} rejected of ${o.provider.calls} calls in ${o.provider.windowMinutes} min`,
      }),
      card('Workers alive', `${alive} / ${o.workers.length}`, '#/workers', { bad: alive === 0, key: 'workers' }),
    ),
    h(
      'div',
      { class: 'charts' },
      chart(
        'Orders per hour, last 24 h (by current status)',
        columns(o.ordersPerHour, 'hourMs', 'status', statuses, 3_600_000, 24, hourEnd),
        statuses,
        STATUS_COLORS,
        'orders-per-hour',
      ),
      chart(
        'Throughput per minute, last hour',
        columns(o.throughputPerMinute, 'minuteMs', 'series', ['accepted', 'success', 'failed', 'manual'], 60_000, 60, minuteEnd),
        ['accepted', 'success', 'failed', 'manual'],
        SERIES_COLORS,
        'throughput',
      ),
    ),
    h('h3', null, 'Open breaks by age'),
    table(
      [
        ['category', (r) => link(`#/breaks?category=${encodeURIComponent(r.category)}`, r.category)],
        ['age', (r) => r.ageBucket],
        [
          'open',
          (r) => link(`#/breaks?category=${encodeURIComponent(r.category)}&age=${encodeURIComponent(r.ageBucket)}`, String(r.count)),
        ],
      ],
      o.openBreaks,
      { empty: 'no open breaks' },
    ),
    h('h3', null, 'Jobs by task'),
    table(
      [
        ['task', (r) => link(`#/jobs?task=${encodeURIComponent(r.task)}`, r.task)],
        ...['queued', 'running', 'retrying', 'failed'].map((s) => [
          s,
          (r) => link(`#/jobs?task=${encodeURIComponent(r.task)}&state=${s}`, String(r[s])),
        ]),
      ],
      o.jobs,
      { empty: 'no jobs queued' },
    ),
  );
}

export async function workersView(ctx) {
  const { data: o } = await api('/admin/console/api/overview', { background: ctx.background });
  return h(
    'section',
    null,
    h('h2', null, 'Workers'),
    table(
      [
        ['worker', (w) => w.workerId],
        ['host', (w) => `${w.hostname}:${w.pid}`],
        ['last seen', (w) => when(w.lastSeenAt)],
        ['alive', (w) => h('span', { class: w.alive ? 'ok' : 'bad' }, w.alive ? 'yes' : 'no (stale heartbeat)')],
      ],
      o.workers,
      { empty: 'no worker has a heartbeat' },
    ),
  );
}
