// Orders: search, one order's timeline (both databases, provider calls, callbacks, jobs, breaks,
// audit), and the manual review queue with the provider's current answer and the resolve form.
import { act, age, api, code, form, h, json, link, query, say, short, table, when } from './consoleDom.js';

const STATUSES = ['', 'init', 'processing', 'manual', 'success', 'failed'];

function status(s) {
  return h('span', { class: `status status-${s}` }, s);
}

function orderLink(order) {
  return link(`#/order/${order.withdrawOrderId}`, short(order.withdrawOrderId));
}

export async function ordersView(ctx) {
  const p = ctx.params;
  const reply = await api(`/admin/console/api/orders${query({ q: p.q, status: p.status, cursor: p.cursor })}`, {
    background: ctx.background,
  });
  const search = form(
    [
      { name: 'q', label: 'order id, transaction id, account id or user id', value: p.q ?? '', placeholder: 'search' },
      { name: 'status', label: 'status', type: 'select', options: STATUSES, value: p.status ?? '' },
    ],
    'Search',
    (values) => {
      location.hash = `#/orders${query({ q: values.q.trim(), status: values.status })}`;
    },
    { id: 'order-search' },
  );
  const { orders, nextCursor } = reply.data;
  return h(
    'section',
    null,
    h('h2', null, 'Orders'),
    search,
    table(
      [
        ['order', orderLink],
        ['status', (o) => status(o.status)],
        ['amount', (o) => `${o.amount} ${o.currency}`],
        ['user', (o) => link(`#/orders?q=${encodeURIComponent(o.userId)}`, o.userId)],
        ['account', (o) => link(`#/account/${o.fromAccountId}`, short(o.fromAccountId))],
        ['created', (o) => when(o.createdAt)],
        ['updated', (o) => when(o.updatedAt)],
        ['failure reason', (o) => o.failureReason ?? ''],
      ],
      orders,
      { empty: 'no order matches', rowAttrs: (o) => ({ dataset: { order: o.withdrawOrderId } }) },
    ),
    nextCursor ? h('p', null, link(`#/orders${query({ q: p.q, status: p.status, cursor: nextCursor })}`, 'older →')) : null,
  );
}

function timeline(order) {
  const ev = order.evidence ?? {};
  const items = [
    ...(ev.history ?? []).map((x) => ({
      at: x.at,
      what: `status ${x.from ?? '—'} → ${x.to}`,
      who: `${x.actor}${x.actorId ? ` ${x.actorId}` : ''}`,
      note: x.reason,
      evidence: x.evidence,
    })),
    ...(ev.submitAttempts ?? []).map((x) => ({
      at: x.at,
      what: `provider submit: ${x.result}${x.httpStatus ? ` (HTTP ${x.httpStatus})` : ''}`,
      who: 'gateway',
      note: x.durationMs !== null && x.durationMs !== undefined ? `${x.durationMs} ms` : null,
      evidence: x.detail,
    })),
    ...(ev.statusQueries ?? []).map((x) => ({
      at: x.at,
      what: `provider status query: ${x.result}`,
      who: x.detail?.askedBy ?? 'recovery',
      note: null,
      evidence: x.detail,
    })),
    ...(ev.callbacks ?? []).map((x) => ({
      at: x.receivedAt,
      what: `callback ${x.status}${x.failureCode ? ` (${x.failureCode})` : ''}: ${x.outcome ?? 'not applied yet'}`,
      who: 'provider',
      note: x.eventId,
      evidence: null,
    })),
  ].sort((a, b) => String(a.at).localeCompare(String(b.at)));
  return table(
    [
      ['at', (x) => when(x.at)],
      ['what', (x) => x.what],
      ['by', (x) => x.who],
      ['note', (x) => x.note ?? ''],
      ['evidence', (x) => (x.evidence ? h('details', null, h('summary', null, 'show'), json(x.evidence)) : '')],
    ],
    items,
    { class: 'grid timeline', empty: 'nothing recorded' },
  );
}

function resolveForms(order, refresh) {
  const orderId = order.withdrawOrderId;
  const overrideBox = h('div', { class: 'override' });
  const resolve = form(
    [
      { name: 'outcome', label: 'resolve as', type: 'select', options: ['success', 'failed'], value: 'failed' },
      { name: 'reason', label: 'reason (what you checked)', type: 'textarea', required: true, minlength: 3 },
    ],
    'Resolve',
    async (values) => {
      try {
        const reply = await api(`/admin/console/api/orders/${orderId}/resolve`, { method: 'POST', body: values });
        say('ok', `order ${short(orderId)} ${reply.msg}: now ${reply.data.status} (provider said ${reply.data.providerStatus ?? '—'})`);
        refresh();
      } catch (error) {
        say('error', `resolve ${short(orderId)} refused: ${error.message}`);
        if (error.data?.overridable) {
          overrideBox.replaceChildren(
            h('p', null, 'Only with evidence that nothing was paid (or that it came back): a second operator must approve.'),
            h(
              'button',
              {
                type: 'button',
                class: 'request-override',
                onclick: () =>
                  act('override request', async () => {
                    const reply = await api(`/admin/console/api/orders/${orderId}/override`, {
                      method: 'POST',
                      body: { reason: values.reason },
                    });
                    refresh();
                    return { msg: `request #${reply.data.approvalId} ${reply.msg}` };
                  }),
              },
              'Request an override (dual control)',
            ),
          );
        }
      }
    },
    { class: 'action-form resolve-form', dataset: { order: orderId } },
  );
  return h('div', { class: 'resolve' }, resolve, overrideBox);
}

export async function orderView(ctx) {
  const { data: d } = await api(`/admin/console/api/orders/${encodeURIComponent(ctx.id ?? '')}`, { background: ctx.background });
  const o = d.order;
  const facts = [
    ['order', code(o.withdrawOrderId)],
    ['transaction', code(o.transactionId)],
    ['status', status(o.status)],
    ['amount', `${o.amount} ${o.currency}`],
    ['user', link(`#/orders?q=${encodeURIComponent(o.userId)}`, o.userId)],
    ['from account', link(`#/account/${o.fromAccountId}`, o.fromAccountId)],
    ['to account', o.toAccountId],
    ['created', when(o.createdAt)],
    ['updated', when(o.updatedAt)],
    ['failure reason', o.failureReason ?? '—'],
    ['hold', d.reservation ? `${d.reservation.amount} ${d.reservation.status} (${when(d.reservation.updatedAt)})` : '—'],
    [
      'account now',
      d.account
        ? `balance ${d.account.balance}, available ${d.account.available}, reserved ${d.account.reserved} (${d.account.status})`
        : '—',
    ],
  ];
  return h(
    'section',
    { id: 'order', dataset: { order: o.withdrawOrderId, status: o.status } },
    h('h2', null, 'Order ', code(short(o.withdrawOrderId)), ' ', status(o.status)),
    h(
      'dl',
      { class: 'facts' },
      facts.map(([k, v]) => [h('dt', null, k), h('dd', null, v)]),
    ),
    o.status === 'manual'
      ? h(
          'div',
          { class: 'panel' },
          h('h3', null, 'Resolve'),
          d.pendingOverride
            ? h('p', null, 'An override is waiting for a second operator: ', link('#/approvals', `request #${d.pendingOverride}`))
            : null,
          h('button', { type: 'button', onclick: () => askProvider(o.withdrawOrderId) }, 'Ask the provider now'),
          resolveForms(o, ctx.refresh),
        )
      : null,
    h('h3', null, 'Timeline'),
    timeline(o),
    h('h3', null, 'Ledger (Ledger DB)'),
    table(
      [
        ['journal', (j) => `${j.journalId} ${j.kind}`],
        ['source', (j) => j.source],
        ['at', (j) => when(j.createdAt)],
        [
          'entries',
          (j) =>
            h(
              'ul',
              { class: 'entries' },
              j.entries.map((e) => h('li', null, `${e.account} (${e.accountKind}) ${e.amount} ${e.currency} → ${e.balanceAfter}`)),
            ),
        ],
      ],
      d.ledger,
      { empty: 'no journal yet for this transaction' },
    ),
    h('h3', null, 'Jobs carrying it'),
    table(
      [
        ['job', (j) => link(`#/jobs?before=${BigInt(j.jobId) + 1n}`, j.jobId)],
        ['task', (j) => j.task],
        ['attempts', (j) => `${j.attempts}/${j.maxAttempts}`],
        ['run at', (j) => when(j.runAt)],
        ['last error', (j) => j.lastError ?? ''],
      ],
      d.jobs,
      { empty: 'no queued job (finished jobs are deleted)' },
    ),
    h('h3', null, 'Breaks'),
    table(
      [
        [
          'break',
          (b) => link(`#/breaks?state=${b.resolvedAt ? 'resolved' : 'open'}&category=${encodeURIComponent(b.category)}`, b.breakId),
        ],
        ['category', (b) => b.category],
        ['expected / actual', (b) => `${b.expected ?? '—'} / ${b.actual ?? '—'}`],
        ['first seen', (b) => when(b.firstSeenAt)],
        ['resolution', (b) => b.resolution ?? 'open'],
      ],
      d.breaks,
      { empty: 'none' },
    ),
    h('h3', null, 'Audit'),
    table(
      [
        ['at', (a) => when(a.at)],
        ['operator', (a) => a.operator],
        ['action', (a) => a.action],
        ['details', (a) => h('details', null, h('summary', null, 'show'), json(a.details))],
      ],
      d.audit,
      { empty: 'no operator action yet' },
    ),
  );
}

async function askProvider(orderId) {
  await act('provider', async () => {
    const reply = await api(`/admin/console/api/orders/${orderId}/provider`);
    return { msg: `says ${reply.data.status} (${reply.data.reason}) at ${when(reply.data.askedAt)}` };
  });
}

export async function reviewView(ctx) {
  const { data } = await api('/admin/console/api/review', { background: ctx.background });
  return h(
    'section',
    { id: 'review' },
    h('h2', null, `Manual review (${data.total})`),
    data.total > data.orders.length ? h('p', null, `showing the ${data.orders.length} waiting longest`) : null,
    data.orders.length === 0 ? h('p', { class: 'empty' }, 'No order waits for a human.') : null,
    data.orders.map((o) =>
      h(
        'article',
        { class: 'review-card', dataset: { order: o.withdrawOrderId } },
        h(
          'header',
          null,
          link(`#/order/${o.withdrawOrderId}`, `Order ${short(o.withdrawOrderId)}`),
          ` ${o.amount} ${o.currency} · user ${o.userId} · in manual for ${age((Date.now() - Date.parse(o.updatedAt)) / 1000)}`,
        ),
        h(
          'p',
          { class: `provider provider-${o.provider?.status ?? 'none'}` },
          'Provider says now: ',
          h('strong', null, o.provider ? o.provider.status : '—'),
          o.provider ? ` (${o.provider.reason}, asked ${when(o.provider.askedAt)})` : '',
        ),
        h('details', null, h('summary', null, 'evidence'), timeline(o)),
        resolveForms(o, ctx.refresh),
      ),
    ),
  );
}
