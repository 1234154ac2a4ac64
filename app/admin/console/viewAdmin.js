// Dual-control requests (approve, reject, withdraw), accounts and credit requests, the audit trail,
// operators (admin role) and one's own password.
import { act, api, code, form, h, json, link, query, short, state, table, when } from './consoleDom.js';

function subjectLink(subject) {
  const [kind, id] = String(subject).split(':');
  if (kind === 'order') return link(`#/order/${id}`, subject);
  if (kind === 'account') return link(`#/account/${id}`, subject);
  return subject;
}

function describe(a) {
  if (a.kind === 'account.credit')
    return `credit ${a.payload.amount} ${a.payload.currency} to account ${short(a.payload.accountId)} (user ${a.payload.userId})`;
  if (a.kind === 'withdraw.resolve_override') return `resolve order ${short(a.payload.orderId)} failed against the provider's answer`;
  if (a.kind === 'jobs.retry') return `retry ${a.payload.jobIds.length} jobs`;
  return a.kind;
}

function decisionButtons(a, refresh) {
  const me = state.session?.operator;
  if (a.status !== 'pending' || !me) return '';
  if (a.maker === me.login) {
    return h(
      'span',
      null,
      h('em', null, 'yours: another operator must approve '),
      h(
        'button',
        {
          type: 'button',
          class: 'cancel',
          onclick: () =>
            act(`request #${a.approvalId}`, async () => {
              const reply = await api(`/admin/console/api/approvals/${a.approvalId}/cancel`, { method: 'POST' });
              refresh();
              return reply;
            }),
        },
        'Withdraw',
      ),
    );
  }
  if (me.role !== 'approver' && me.role !== 'admin') return h('em', null, 'waits for an approver');
  return h(
    'span',
    { class: 'decide' },
    h(
      'button',
      {
        type: 'button',
        class: 'approve',
        onclick: () =>
          act(`request #${a.approvalId}`, async () => {
            const reply = await api(`/admin/console/api/approvals/${a.approvalId}/approve`, { method: 'POST', body: {} });
            refresh();
            return { msg: `${reply.msg} (${reply.data.outcome ?? '—'})` };
          }),
      },
      'Approve',
    ),
    form(
      [{ name: 'note', label: 'why not', type: 'text', required: true }],
      'Reject',
      async (values) => {
        await act(`request #${a.approvalId}`, async () => {
          const reply = await api(`/admin/console/api/approvals/${a.approvalId}/reject`, { method: 'POST', body: values });
          refresh();
          return reply;
        });
      },
      { class: 'action-form inline' },
    ),
  );
}

export async function approvalsView(ctx) {
  const [pending, decided] = await Promise.all([
    api('/admin/console/api/approvals?state=pending', { background: ctx.background }),
    api(`/admin/console/api/approvals${query({ state: 'decided', before: ctx.params.before })}`, { background: ctx.background }),
  ]);
  const columns = (withActions) => [
    ['#', (a) => a.approvalId],
    ['request', (a) => describe(a)],
    ['subject', (a) => subjectLink(a.subject)],
    ['reason', (a) => a.reason],
    ['maker', (a) => a.maker],
    ['made', (a) => when(a.createdAt)],
    withActions ? ['expires', (a) => when(a.expiresAt)] : ['checker', (a) => a.checker ?? '—'],
    withActions
      ? ['', (a) => decisionButtons(a, ctx.refresh)]
      : ['status', (a) => h('span', { class: `approval-${a.status}` }, `${a.status}${a.outcome ? ` (${a.outcome})` : ''}`)],
  ];
  return h(
    'section',
    { id: 'approvals' },
    h('h2', null, `Waiting for a second operator (${pending.data.approvals.length})`),
    table(columns(true), pending.data.approvals, { empty: 'nothing waits', rowAttrs: (a) => ({ dataset: { approval: a.approvalId } }) }),
    h('h2', null, 'Decided'),
    table(columns(false), decided.data.approvals, { empty: 'none yet', rowAttrs: (a) => ({ dataset: { approval: a.approvalId } }) }),
    decided.data.nextBefore ? h('p', null, link(`#/approvals?before=${decided.data.nextBefore}`, 'older →')) : null,
  );
}

function accountLine(a) {
  return `${a.currency} · balance ${a.balance} · available ${a.available} · reserved ${a.reserved} · ${a.status}`;
}

export async function accountsView(ctx) {
  const userId = ctx.params.userId;
  const found = userId ? await api(`/admin/console/api/accounts${query({ userId })}`, { background: ctx.background }) : null;
  return h(
    'section',
    null,
    h('h2', null, 'Accounts'),
    form(
      [{ name: 'userId', label: 'user id', value: userId ?? '', required: true }],
      'Find',
      (values) => {
        location.hash = `#/accounts${query(values)}`;
      },
      { id: 'account-search' },
    ),
    found
      ? table(
          [
            ['account', (a) => link(`#/account/${a.accountId}`, a.accountId)],
            ['', (a) => accountLine(a)],
          ],
          found.data.accounts,
          { empty: 'this user has no account' },
        )
      : null,
  );
}

export async function accountView(ctx) {
  const { data } = await api(`/admin/console/api/accounts/${encodeURIComponent(ctx.id ?? '')}`, { background: ctx.background });
  const a = data.account;
  const credit = form(
    [
      { name: 'amount', label: `amount (${a.currency})`, required: true, placeholder: '100.00' },
      { name: 'reason', label: 'reason (deposit reference, ticket)', type: 'textarea', required: true, minlength: 3 },
    ],
    'Request credit',
    async (values) => {
      await act('credit request', async () => {
        const reply = await api(`/admin/console/api/accounts/${a.accountId}/credits`, { method: 'POST', body: values });
        return { msg: `request #${reply.data.approvalId} ${reply.msg}` };
      });
    },
    { id: 'credit-form' },
  );
  return h(
    'section',
    { id: 'account', dataset: { account: a.accountId } },
    h('h2', null, 'Account ', code(a.accountId)),
    h('p', { class: 'account-line' }, `user ${a.userId} · ${accountLine(a)}`),
    h('p', null, link(`#/orders?q=${a.accountId}`, 'its withdrawals')),
    h('h3', null, 'Credit (a second operator approves)'),
    credit,
    h('h3', null, 'Credits'),
    table(
      [
        ['at', (c) => when(c.at)],
        ['amount', (c) => c.amount],
        ['by', (c) => c.actor],
        ['transaction', (c) => code(c.transactionId)],
      ],
      data.credits,
      { empty: 'no credit yet' },
    ),
  );
}

export async function auditView(ctx) {
  const p = ctx.params;
  const { data } = await api(`/admin/console/api/audit${query({ operator: p.operator, subject: p.subject, before: p.before })}`, {
    background: ctx.background,
  });
  return h(
    'section',
    { id: 'audit' },
    h('h2', null, 'Audit trail'),
    form(
      [
        { name: 'operator', label: 'operator', value: p.operator ?? '' },
        { name: 'subject', label: 'subject (order:<id>, account:<id>, job:<id>, …)', value: p.subject ?? '' },
      ],
      'Filter',
      (values) => {
        location.hash = `#/audit${query(values)}`;
      },
      { id: 'audit-filter' },
    ),
    table(
      [
        ['at', (e) => when(e.at)],
        ['operator', (e) => link(`#/audit${query({ operator: e.operator })}`, e.operator)],
        ['action', (e) => e.action],
        ['subject', (e) => subjectLink(e.subject)],
        ['details', (e) => h('details', null, h('summary', null, 'show'), json(e.details))],
      ],
      data.entries,
      { empty: 'nothing recorded', rowAttrs: (e) => ({ dataset: { action: e.action, operator: e.operator } }) },
    ),
    data.nextBefore
      ? h('p', null, link(`#/audit${query({ operator: p.operator, subject: p.subject, before: data.nextBefore })}`, 'older →'))
      : null,
  );
}

export async function operatorsView(ctx) {
  const { data } = await api('/admin/console/api/operators', { background: ctx.background });
  const roles = ['viewer', 'operator', 'approver', 'admin'];
  const patch = (o, body, label) =>
    act(`${label} ${o.login}`, async () => {
      const reply = await api(`/admin/console/api/operators/${o.operatorId}`, { method: 'PATCH', body });
      ctx.refresh();
      return reply;
    });
  const create = form(
    [
      { name: 'login', label: 'login', required: true },
      { name: 'displayName', label: 'name', required: true },
      { name: 'role', label: 'role', type: 'select', options: roles, value: 'viewer' },
      { name: 'password', label: 'first password', type: 'password', required: true, autocomplete: 'new-password' },
    ],
    'Create operator',
    async (values) => {
      await act('create operator', async () => {
        const reply = await api('/admin/console/api/operators', { method: 'POST', body: values });
        ctx.refresh();
        return reply;
      });
    },
    { id: 'operator-create' },
  );
  return h(
    'section',
    { id: 'operators' },
    h('h2', null, 'Operators'),
    table(
      [
        ['login', (o) => o.login],
        ['name', (o) => o.displayName],
        [
          'role',
          (o) =>
            h(
              'select',
              { onchange: (e) => patch(o, { role: e.target.value }, 'role of') },
              roles.map((r) => h('option', { value: r, selected: r === o.role }, r)),
            ),
        ],
        ['state', (o) => (o.disabled ? 'disabled' : o.lockedUntil ? `locked until ${when(o.lockedUntil)}` : 'active')],
        ['sessions', (o) => o.activeSessions],
        [
          '',
          (o) =>
            h(
              'span',
              null,
              h(
                'button',
                { type: 'button', onclick: () => patch(o, { disabled: !o.disabled }, o.disabled ? 'enable' : 'disable') },
                o.disabled ? 'Enable' : 'Disable',
              ),
              o.lockedUntil ? h('button', { type: 'button', onclick: () => patch(o, { unlock: true }, 'unlock') }, 'Unlock') : null,
            ),
        ],
      ],
      data.operators,
    ),
    h('h3', null, 'New operator'),
    create,
  );
}

export async function passwordView() {
  return h(
    'section',
    null,
    h('h2', null, 'Change your password'),
    form(
      [
        { name: 'currentPassword', label: 'current password', type: 'password', required: true, autocomplete: 'current-password' },
        {
          name: 'newPassword',
          label: 'new password (at least 12 characters)',
          type: 'password',
          required: true,
          autocomplete: 'new-password',
        },
      ],
      'Change',
      async (values, el) => {
        const reply = await act('password', () => api('/admin/console/api/session/password', { method: 'POST', body: values }));
        if (reply) el.reset();
      },
    ),
  );
}
