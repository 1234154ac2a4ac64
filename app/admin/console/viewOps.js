// Jobs (filter, payload, last error, the orders they carry; retry, cancel, reschedule; bulk retry as
// a dual-control request), cron, breaks, provider calls, pending callbacks, unrelayed outbox rows.
import { act, age, api, code, form, h, json, link, query, say, short, table, when } from './consoleDom.js';

const JOB_STATES = ['', 'queued', 'running', 'retrying', 'failed'];

function txLinks(job) {
  const links = job.transactionIds.map((tx) => link(`#/orders?q=${tx}`, short(tx)));
  const more = job.transactionCount > job.transactionIds.length ? ` +${job.transactionCount - job.transactionIds.length}` : '';
  return h(
    'span',
    { class: 'tx-links' },
    links.flatMap((a, i) => (i ? [', ', a] : [a])),
    more,
  );
}

function jobActions(job, refresh) {
  const retry = h(
    'button',
    {
      type: 'button',
      class: 'retry',
      disabled: job.state === 'running',
      onclick: () =>
        act(`retry job ${job.jobId}`, async () => {
          const reply = await api(`/admin/console/api/jobs/${job.jobId}/retry`, { method: 'POST' });
          refresh();
          return { msg: `${reply.msg}: attempts ${reply.data.attempts}/${reply.data.maxAttempts}, runs at ${when(reply.data.runAt)}` };
        }),
    },
    'Retry now',
  );
  const cancel = form(
    [{ name: 'reason', label: 'cancel reason', type: 'text', required: true }],
    'Cancel',
    async (values) => {
      await act(`cancel job ${job.jobId}`, async () => {
        const reply = await api(`/admin/console/api/jobs/${job.jobId}/cancel`, { method: 'POST', body: values });
        refresh();
        return reply;
      });
    },
    { class: 'action-form inline' },
  );
  const reschedule = form(
    [{ name: 'runAt', label: 'run at (UTC)', type: 'datetime-local', required: true }],
    'Reschedule',
    async (values) => {
      await act(`reschedule job ${job.jobId}`, async () => {
        const runAt = new Date(`${values.runAt}Z`).toISOString();
        const reply = await api(`/admin/console/api/jobs/${job.jobId}/reschedule`, { method: 'POST', body: { runAt } });
        refresh();
        return reply;
      });
    },
    { class: 'action-form inline' },
  );
  return h('details', { class: 'job-actions' }, h('summary', null, 'actions'), retry, cancel, reschedule);
}

export async function jobsView(ctx) {
  const p = ctx.params;
  const { data } = await api(`/admin/console/api/jobs${query({ task: p.task, state: p.state, before: p.before })}`, {
    background: ctx.background,
  });
  const filter = form(
    [
      { name: 'task', label: 'task', type: 'select', options: ['', ...data.tasks], value: p.task ?? '' },
      { name: 'state', label: 'state', type: 'select', options: JOB_STATES, value: p.state ?? '' },
    ],
    'Filter',
    (values) => {
      location.hash = `#/jobs${query(values)}`;
    },
    { id: 'job-filter' },
  );
  const selectable = data.jobs.filter((j) => j.state !== 'running');
  const bulk = form(
    [{ name: 'reason', label: `retry all ${selectable.length} shown (a second operator approves)`, type: 'text', required: true }],
    'Request bulk retry',
    async (values) => {
      const ids = selectable.map((j) => j.jobId);
      if (ids.length < 2) {
        say('error', 'a bulk retry needs at least two jobs; retry one job from its actions');
        return;
      }
      await act('bulk retry', async () => {
        const reply = await api('/admin/console/api/jobs/retry', { method: 'POST', body: { jobIds: ids, reason: values.reason } });
        return { msg: `request #${reply.data.approvalId} ${reply.msg}` };
      });
    },
    { id: 'bulk-retry' },
  );
  return h(
    'section',
    { id: 'jobs' },
    h('h2', null, 'Jobs'),
    filter,
    selectable.length > 1 ? bulk : null,
    table(
      [
        ['job', (j) => j.jobId],
        ['task', (j) => j.task],
        ['state', (j) => h('span', { class: `job-state job-${j.state}` }, j.state)],
        ['attempts', (j) => `${j.attempts}/${j.maxAttempts}`],
        ['run at', (j) => when(j.runAt)],
        ['orders', txLinks],
        ['last error', (j) => h('code', { class: 'last-error' }, j.lastError ?? '')],
        [
          'payload',
          (j) =>
            h(
              'details',
              null,
              h('summary', null, j.payloadTruncated ? 'payload (truncated)' : 'payload'),
              h('pre', { class: 'json' }, j.payload ?? ''),
            ),
        ],
        ['', (j) => jobActions(j, ctx.refresh)],
      ],
      data.jobs,
      {
        empty: 'no job matches (completed jobs are deleted)',
        rowAttrs: (j) => ({ dataset: { job: j.jobId, state: j.state, task: j.task } }),
      },
    ),
    data.nextBefore ? h('p', null, link(`#/jobs${query({ task: p.task, state: p.state, before: data.nextBefore })}`, 'older →')) : null,
  );
}

export async function cronView(ctx) {
  const { data } = await api('/admin/console/api/cron', { background: ctx.background });
  return h(
    'section',
    null,
    h('h2', null, 'Cron'),
    table(
      [
        ['identifier', (c) => c.identifier],
        ['task', (c) => link(`#/jobs?task=${encodeURIComponent(c.task)}`, c.task)],
        ['schedule (UTC)', (c) => code(c.pattern)],
        ['last run', (c) => when(c.lastRunAt)],
        ['next run', (c) => when(c.nextRunAt)],
      ],
      data.cron,
    ),
  );
}

export async function breaksView(ctx) {
  const p = ctx.params;
  const state = p.state ?? 'open';
  const { data } = await api(`/admin/console/api/breaks${query({ state, category: p.category, age: p.age, cursor: p.cursor })}`, {
    background: ctx.background,
  });
  const filter = form(
    [
      { name: 'state', label: 'state', type: 'select', options: ['open', 'resolved'], value: state },
      { name: 'category', label: 'category', type: 'select', options: ['', ...data.categories], value: p.category ?? '' },
      { name: 'age', label: 'age', type: 'select', options: ['', '<1h', '1h-24h', '1d-7d', '>7d'], value: p.age ?? '' },
    ],
    'Filter',
    (values) => {
      location.hash = `#/breaks${query(values)}`;
    },
    { id: 'break-filter' },
  );
  const subject = (b) =>
    b.orderId
      ? link(`#/order/${b.orderId}`, `order ${short(b.orderId)}`)
      : b.accountId
        ? link(`#/account/${b.accountId}`, `account ${short(b.accountId)}`)
        : b.transactionId
          ? link(`#/orders?q=${b.transactionId}`, `transaction ${short(b.transactionId)}`)
          : b.subject;
  const resolveForm = (b) =>
    form(
      [{ name: 'note', label: 'resolution note', type: 'text', required: true }],
      'Resolve',
      async (values) => {
        await act(`break ${b.breakId}`, async () => {
          const reply = await api(`/admin/console/api/breaks/${b.breakId}/resolve`, { method: 'POST', body: values });
          ctx.refresh();
          return reply;
        });
      },
      { class: 'action-form inline' },
    );
  return h(
    'section',
    { id: 'breaks' },
    h('h2', null, 'Reconciliation breaks'),
    filter,
    table(
      [
        ['break', (b) => b.breakId],
        ['category', (b) => b.category],
        ['subject', subject],
        ['expected', (b) => b.expected ?? ''],
        ['actual', (b) => b.actual ?? ''],
        ['age', (b) => age(b.ageSeconds)],
        ['seen', (b) => `${b.seenCount}× (last ${when(b.lastSeenAt)})`],
        ['details', (b) => h('details', null, h('summary', null, 'show'), json(b.details))],
        ['', (b) => (b.resolvedAt ? `${b.resolution} (${when(b.resolvedAt)})` : resolveForm(b))],
      ],
      data.breaks,
      { empty: 'no break matches', rowAttrs: (b) => ({ dataset: { break: b.breakId } }) },
    ),
    data.nextCursor
      ? h('p', null, link(`#/breaks${query({ state, category: p.category, age: p.age, cursor: data.nextCursor })}`, 'more →'))
      : null,
  );
}

export async function providerCallsView(ctx) {
  const p = ctx.params;
  const { data } = await api(`/admin/console/api/provider-calls${query({ result: p.result, before: p.before })}`, {
    background: ctx.background,
  });
  return h(
    'section',
    null,
    h('h2', null, `Provider calls${p.result ? `: ${p.result}` : ''}`),
    h(
      'p',
      null,
      ['', 'unknown', 'rejected', 'accepted'].map((r) => [link(`#/provider-calls${query({ result: r })}`, r || 'all'), ' ']),
    ),
    table(
      [
        ['at', (c) => when(c.at)],
        ['result', (c) => c.result],
        ['HTTP', (c) => c.httpStatus ?? '—'],
        ['ms', (c) => c.durationMs ?? '—'],
        ['order', (c) => (c.orderId ? link(`#/order/${c.orderId}`, short(c.orderId)) : short(c.transactionId))],
        ['detail', (c) => h('details', null, h('summary', null, 'show'), json(c.detail))],
      ],
      data.calls,
      { empty: 'no call matches' },
    ),
    data.nextBefore ? h('p', null, link(`#/provider-calls${query({ result: p.result, before: data.nextBefore })}`, 'older →')) : null,
  );
}

export async function callbacksView(ctx) {
  const { data } = await api('/admin/console/api/callbacks', { background: ctx.background });
  return h(
    'section',
    null,
    h('h2', null, `Callbacks waiting to be applied (${data.pending})`),
    table(
      [
        ['received', (c) => when(c.receivedAt)],
        ['event', (c) => code(c.eventId)],
        ['status', (c) => c.status],
        ['order', (c) => link(`#/orders?q=${encodeURIComponent(c.reference)}`, short(c.reference))],
        ['attempts', (c) => c.attempts],
        ['last error', (c) => c.lastError ?? ''],
      ],
      data.callbacks,
      { empty: 'none waiting' },
    ),
  );
}

export async function outboxView(ctx) {
  const db = ctx.params.db === 'ledger' ? 'ledger' : 'balance';
  const { data } = await api(`/admin/console/api/outbox?db=${db}`, { background: ctx.background });
  return h(
    'section',
    null,
    h('h2', null, `Unrelayed outbox rows, ${db} database (${data.unrelayed})`),
    h('p', null, link('#/outbox?db=balance', 'balance'), ' ', link('#/outbox?db=ledger', 'ledger')),
    table(
      [
        ['id', (r) => r.outboxId],
        ['topic', (r) => r.topic],
        ['order', (r) => link(`#/orders?q=${r.transactionId}`, short(r.transactionId))],
        ['waiting', (r) => age(r.ageSeconds)],
      ],
      data.rows,
      { empty: 'nothing waiting' },
    ),
  );
}
