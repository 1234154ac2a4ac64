// Every action of the console against every role: a role below the one an action needs gets 403
// with no data, and nothing is written (no audit row, no request, no job touched, no order moved).
import test from 'ava';
import { sql } from 'slonik';
import { z } from 'zod';
import { crew, failedJob, manualOrder, ROLES, type Crew } from './helpers/consoleFixtures.ts';
import { startTestSystem, type TestSystem } from './helpers/system.ts';

let system: TestSystem;
let ops: Crew;

test.before(async () => {
  system = await startTestSystem({ worker: true });
  await system.worker!.stop();
  ops = await crew(system);
});
test.after.always(async () => {
  await system?.stop();
});

type Role = (typeof ROLES)[number];
const MEMBER: Record<Role, keyof Omit<Crew, 'ids'>> = { viewer: 'vera', operator: 'otto', approver: 'april', admin: 'ada' };

const digest = () =>
  system.db.databases.balance.one(sql.type(
    z.object({ audit: z.number(), approvals: z.number(), jobs: z.string(), orders: z.string(), breaks: z.number(), operators: z.string() }),
  )`
    select (select count(*)::int from admin_audit_log where action not in ('operator.login', 'operator.login_failed')) as audit,
           (select count(*)::int from approval_requests) as approvals,
           (select coalesce(string_agg(id || ':' || attempts || ':' || run_at, ',' order by id), '') from graphile_worker._private_jobs) as jobs,
           (select coalesce(string_agg(id || ':' || status, ',' order by id), '') from withdraw_orders) as orders,
           (select count(*)::int from reconciliation_breaks where resolved_at is null) as breaks,
           (select string_agg(login || ':' || role || ':' || (disabled_at is null), ',' order by id) from operators) as operators`);

test('when each role tries every action above it, then it gets 403 with no data and nothing is written', async (t) => {
  const order = await manualOrder(system, 'roles-order', false);
  const jobs = [await failedJob(system), await failedJob(system)];
  const accountId = await system.fundedAccount('roles-account', '10.00');
  const breakId = await system.db.databases.balance.oneFirst(sql.type(z.object({ id: z.bigint() }))`
    select reconciliation_record_break('ledger_balance_mismatch', 'account:roles', null, null, null, 'USD', '1', '2', '{}'::jsonb) as id`);
  const request = await ops.otto.call('POST', `/admin/console/api/accounts/${accountId}/credits`, {
    body: { amount: '1.00', reason: 'for the matrix' },
  });
  const approvalId = request.body.data.approvalId as string;
  const actions: Array<{ least: Role; method: string; path: string; body?: unknown }> = [
    {
      least: 'operator',
      method: 'POST',
      path: `/admin/console/api/orders/${order.orderId}/resolve`,
      body: { outcome: 'failed', reason: 'matrix' },
    },
    { least: 'operator', method: 'POST', path: `/admin/console/api/orders/${order.orderId}/override`, body: { reason: 'matrix' } },
    { least: 'operator', method: 'POST', path: `/admin/console/api/jobs/${jobs[0]}/retry` },
    { least: 'operator', method: 'POST', path: `/admin/console/api/jobs/${jobs[0]}/cancel`, body: { reason: 'matrix' } },
    { least: 'operator', method: 'POST', path: `/admin/console/api/jobs/${jobs[0]}/reschedule`, body: { runAt: new Date().toISOString() } },
    { least: 'operator', method: 'POST', path: '/admin/console/api/jobs/retry', body: { jobIds: jobs, reason: 'matrix' } },
    { least: 'operator', method: 'POST', path: `/admin/console/api/breaks/${breakId}/resolve`, body: { note: 'matrix' } },
    {
      least: 'operator',
      method: 'POST',
      path: `/admin/console/api/accounts/${accountId}/credits`,
      body: { amount: '1.00', reason: 'matrix' },
    },
    { least: 'approver', method: 'POST', path: `/admin/console/api/approvals/${approvalId}/approve`, body: {} },
    { least: 'approver', method: 'POST', path: `/admin/console/api/approvals/${approvalId}/reject`, body: { note: 'matrix' } },
    { least: 'admin', method: 'GET', path: '/admin/console/api/operators' },
    {
      least: 'admin',
      method: 'POST',
      path: '/admin/console/api/operators',
      body: { login: 'matrix', displayName: 'M', role: 'admin', password: 'correct horse battery staple' },
    },
    { least: 'admin', method: 'PATCH', path: `/admin/console/api/operators/${ops.ids.vera}`, body: { role: 'admin' } },
    {
      least: 'admin',
      method: 'POST',
      path: `/admin/console/api/operators/${ops.ids.vera}/password`,
      body: { password: 'another long passphrase' },
    },
  ];
  const before = await digest();
  let refusals = 0;
  for (const action of actions) {
    for (const role of ROLES.slice(0, ROLES.indexOf(action.least))) {
      const reply = await ops[MEMBER[role]].call(action.method, action.path, { body: action.body });
      t.is(reply.status, 403, `${role}: ${action.method} ${action.path}`);
      t.deepEqual(reply.body.data, null);
      t.regex(reply.body.msg, new RegExp(`needs the ${action.least} role`));
      refusals += 1;
    }
  }
  t.is(refusals, 8 * 1 + 2 * 2 + 4 * 3);
  t.deepEqual(await digest(), before, 'no refusal wrote anything');
  // the maker of a request is refused its approval whatever their role (april makes one, april cannot sign it)
  const own = await ops.april.call('POST', `/admin/console/api/accounts/${accountId}/credits`, {
    body: { amount: '2.00', reason: 'own request' },
  });
  const self = await ops.april.call('POST', `/admin/console/api/approvals/${own.body.data.approvalId}/approve`, { body: {} });
  t.is(self.status, 403);
  const cancelByOther = await ops.olga.call('POST', `/admin/console/api/approvals/${approvalId}/cancel`);
  t.is(cancelByOther.status, 403, 'only the maker withdraws a request');
});

test('when every role reads every page, then each is allowed: reading needs only a session', async (t) => {
  for (const role of ROLES) {
    for (const path of [
      'overview',
      'orders',
      'review',
      'jobs',
      'cron',
      'breaks',
      'approvals',
      'audit',
      'callbacks',
      'outbox',
      'provider-calls',
    ]) {
      const reply = await ops[MEMBER[role]].call('GET', `/admin/console/api/${path}`);
      t.is(reply.status, 200, `${role}: ${path}`);
    }
  }
});
