// Dual control in the console: credits, overrides of the resolve guard and bulk retries wait for a
// second operator (approver or admin, never the maker); the action runs on approval, once, in the
// approval's transaction, and every click is in the audit trail under its operator.
import test from 'ava';
import { CheckIntegrityConstraintViolationError, sql } from 'slonik';
import { z } from 'zod';
import { accountMoney, auditWhere, crew, failedJob, manualOrder, orderStatus, type Crew } from './helpers/consoleFixtures.ts';
import { call } from './helpers/http.ts';
import { startTestSystem, type TestSystem } from './helpers/system.ts';

let system: TestSystem;
let ops: Crew;

test.before(async () => {
  system = await startTestSystem({ worker: true });
  await system.worker!.stop(); // nothing moves an order but the test and the operators
  ops = await crew(system);
});
test.after.always(async () => {
  await system?.stop();
});

const ApprovalRow = z.object({ status: z.string(), outcome: z.string().nullable(), checkerId: z.string().nullable() });
const approvalRow = (id: string) =>
  system.db.databases.balance.one(sql.type(ApprovalRow)`
    select status, outcome, checker_id::text as "checkerId" from approval_requests where id = ${id}`);
const creditsOf = (accountId: string) =>
  system.db.databases.balance.any(sql.type(z.object({ amountMinor: z.bigint(), actor: z.string(), transactionId: z.string() }))`
    select amount_minor as "amountMinor", actor, transaction_id::text as "transactionId" from credits where account_id = ${accountId} order by created_at`);

test('when an operator asks to credit an account, then nothing moves until a second operator approves, and then it is credited once', async (t) => {
  const accountId = await system.fundedAccount('dc-credit', '10.00');
  const requested = await ops.otto.call('POST', `/admin/console/api/accounts/${accountId}/credits`, {
    body: { amount: '25.50', reason: 'wire 4711 received' },
  });
  t.is(requested.status, 202, requested.text);
  const approvalId = requested.body.data.approvalId as string;
  t.like(requested.body.data, { kind: 'account.credit', status: 'pending', maker: 'otto', payload: { amount: '25.50', currency: 'USD' } });
  t.like(await accountMoney(system, accountId), { balance: 1_000n }, 'a request moves no money');

  const listed = await ops.vera.call('GET', '/admin/console/api/approvals?state=pending');
  t.true(
    listed.body.data.approvals.some((a: { approvalId: string }) => a.approvalId === approvalId),
    'pending requests are visible to everyone',
  );

  // refusals: the maker, an operator, a viewer
  const own = await ops.otto.call('POST', `/admin/console/api/approvals/${approvalId}/approve`, { body: {} });
  t.is(own.status, 403, 'an operator may not approve');
  const viewer = await ops.vera.call('POST', `/admin/console/api/approvals/${approvalId}/approve`, { body: {} });
  t.is(viewer.status, 403);
  t.like(await approvalRow(approvalId), { status: 'pending', checkerId: null });

  const approved = await ops.april.call('POST', `/admin/console/api/approvals/${approvalId}/approve`, {
    body: { note: 'matches the bank statement' },
  });
  t.is(approved.status, 200, approved.text);
  t.like(approved.body, { msg: 'approved', data: { status: 'approved', outcome: 'credited', checker: 'april' } });
  t.like(await accountMoney(system, accountId), { balance: 3_550n, available: 3_550n });
  const credits = await creditsOf(accountId);
  t.is(credits.length, 2);
  t.like(credits[1], { amountMinor: 2_550n, actor: 'operator:otto+april', transactionId: requested.body.data.payload.transactionId });
  const outbox = await system.db.databases.balance.oneFirst(sql.type(z.object({ n: z.number() }))`
    select count(*)::int as n from outbox where transaction_id = ${credits[1]!.transactionId}`);
  t.is(outbox, 1, 'the credit is announced to the ledger like any other');

  const again = await ops.arno.call('POST', `/admin/console/api/approvals/${approvalId}/approve`, { body: {} });
  t.is(again.status, 200);
  t.is(again.body.msg, 'already approved');
  t.like(await accountMoney(system, accountId), { balance: 3_550n }, 'approving twice credits once');

  const audit = await auditWhere(system, `approval:${approvalId}`);
  t.deepEqual(
    audit.map((row) => [row.operator, row.operatorId, row.action]),
    [
      ['otto', ops.ids.otto, 'approval.request'],
      ['april', ops.ids.april, 'approval.approve'],
    ],
  );
  const creditAudit = (await auditWhere(system, `account:${accountId}`)).filter((row) => row.operator !== 'admin');
  t.deepEqual(
    creditAudit.map((row) => [row.operator, row.action, row.details.maker]),
    [['april', 'account.credit', 'otto']],
  );
});

test('when two approvers approve the same credit at the same instant, then it is credited exactly once', async (t) => {
  const accountId = await system.fundedAccount('dc-race', '10.00');
  const requested = await ops.olga.call('POST', `/admin/console/api/accounts/${accountId}/credits`, {
    body: { amount: '7', reason: 'race test' },
  });
  const approvalId = requested.body.data.approvalId as string;
  const replies = await Promise.all(
    [ops.april, ops.arno, ops.ada, ops.april].map((who) =>
      who.call('POST', `/admin/console/api/approvals/${approvalId}/approve`, { body: {} }),
    ),
  );
  t.true(replies.every((r) => r.status === 200));
  t.is(replies.filter((r) => r.body.msg === 'approved').length, 1);
  t.like(await accountMoney(system, accountId), { balance: 1_700n });
  t.is((await creditsOf(accountId)).length, 2);
  t.is((await auditWhere(system, `approval:${approvalId}`)).filter((row) => row.action === 'approval.approve').length, 1);
});

test('when an approver is the maker, then they cannot approve their own request; a second one can', async (t) => {
  const accountId = await system.fundedAccount('dc-self', '10.00');
  const requested = await ops.april.call('POST', `/admin/console/api/accounts/${accountId}/credits`, {
    body: { amount: '1.00', reason: 'own' },
  });
  t.is(requested.status, 202);
  const own = await ops.april.call('POST', `/admin/console/api/approvals/${requested.body.data.approvalId}/approve`, { body: {} });
  t.is(own.status, 403);
  t.regex(own.body.msg, /another operator/);
  t.like(await accountMoney(system, accountId), { balance: 1_000n });
  const refused = await t.throwsAsync(
    system.db.databases.balance.query(sql.unsafe`
      update approval_requests set status = 'approved', checker_id = maker_id, decided_at = now() where id = ${requested.body.data.approvalId}`),
    { instanceOf: CheckIntegrityConstraintViolationError },
  );
  t.is(
    (refused as CheckIntegrityConstraintViolationError).constraint,
    'approval_requests_checker_not_maker',
    'the database refuses it too',
  );
  t.is((await ops.arno.call('POST', `/admin/console/api/approvals/${requested.body.data.approvalId}/approve`, { body: {} })).status, 200);
  t.like(await accountMoney(system, accountId), { balance: 1_100n });
});

test('when a request is rejected, withdrawn by its maker or expired, then nothing is credited and it cannot be approved', async (t) => {
  const accountId = await system.fundedAccount('dc-no', '10.00');
  const make = async () =>
    (await ops.otto.call('POST', `/admin/console/api/accounts/${accountId}/credits`, { body: { amount: '5.00', reason: 'maybe' } })).body
      .data.approvalId as string;
  const rejectedId = await make();
  t.is(
    (await ops.april.call('POST', `/admin/console/api/approvals/${rejectedId}/reject`, { body: {} })).status,
    400,
    'a rejection says why',
  );
  const rejected = await ops.april.call('POST', `/admin/console/api/approvals/${rejectedId}/reject`, { body: { note: 'no such wire' } });
  t.like(rejected.body, { msg: 'rejected', data: { status: 'rejected', checker: 'april', decisionNote: 'no such wire' } });
  const late = await ops.arno.call('POST', `/admin/console/api/approvals/${rejectedId}/approve`, { body: {} });
  t.is(late.status, 422);
  t.regex(late.body.msg, /already rejected \(by april\)/);

  const withdrawnId = await make();
  t.is((await ops.olga.call('POST', `/admin/console/api/approvals/${withdrawnId}/cancel`)).status, 403, 'only its maker withdraws it');
  t.like((await ops.otto.call('POST', `/admin/console/api/approvals/${withdrawnId}/cancel`)).body, { msg: 'cancelled' });
  t.is((await ops.april.call('POST', `/admin/console/api/approvals/${withdrawnId}/approve`, { body: {} })).status, 422);

  const expiredId = await make();
  await system.db.databases.balance.query(
    sql.unsafe`update approval_requests set expires_at = now() - interval '1 second' where id = ${expiredId}`,
  );
  const expired = await ops.april.call('POST', `/admin/console/api/approvals/${expiredId}/approve`, { body: {} });
  t.is(expired.status, 422);
  t.regex(expired.body.msg, /expired/);
  t.like(await approvalRow(expiredId), { status: 'expired' });
  t.like(await accountMoney(system, accountId), { balance: 1_000n }, 'none of the three moved money');
});

test('when the account is closed by the time a credit is approved, then the request fails and nothing is credited', async (t) => {
  const accountId = await system.fundedAccount('dc-closed', '10.00');
  const requested = await ops.otto.call('POST', `/admin/console/api/accounts/${accountId}/credits`, {
    body: { amount: '3.00', reason: 'x y z' },
  });
  await call(system.url, 'POST', `/admin/accounts/${accountId}/status`, { token: system.adminToken, body: { status: 'closed' } });
  const approved = await ops.april.call('POST', `/admin/console/api/approvals/${requested.body.data.approvalId}/approve`, { body: {} });
  t.is(approved.status, 200);
  t.like(approved.body.data, { status: 'failed', outcome: 'account_unusable' });
  t.like(await accountMoney(system, accountId), { balance: 1_000n });
  const refused = await ops.otto.call('POST', `/admin/console/api/accounts/${accountId}/credits`, {
    body: { amount: '3.00', reason: 'again' },
  });
  t.is(refused.status, 422, 'a closed account gets no new request');
});

test('when a credit request is malformed or its account unknown, then it is refused and nothing is stored', async (t) => {
  const accountId = await system.fundedAccount('dc-bad', '10.00');
  for (const [path, body, status] of [
    [`/admin/console/api/accounts/${accountId}/credits`, { amount: '1.001', reason: 'too precise' }, 400],
    [`/admin/console/api/accounts/${accountId}/credits`, { amount: '-1', reason: 'negative' }, 400],
    [`/admin/console/api/accounts/${accountId}/credits`, { amount: '1.00' }, 400],
    ['/admin/console/api/accounts/00000000-0000-7000-8000-000000000000/credits', { amount: '1.00', reason: 'nobody' }, 404],
  ] as const) {
    t.is((await ops.otto.call('POST', path, { body })).status, status, JSON.stringify(body));
  }
  t.is(
    (await ops.vera.call('POST', `/admin/console/api/accounts/${accountId}/credits`, { body: { amount: '1', reason: 'viewer' } })).status,
    403,
  );
  const stored = await system.db.databases.balance.oneFirst(sql.type(z.object({ n: z.number() }))`
    select count(*)::int as n from approval_requests where subject = ${`account:${accountId}`}`);
  t.is(stored, 0);
});

test.serial(
  'when the provider reports an order paid, then resolving it failed needs an override that a second operator approves',
  async (t) => {
    const order = await manualOrder(system, 'dc-override', true);
    const refused = await ops.otto.call('POST', `/admin/console/api/orders/${order.orderId}/resolve`, {
      body: { outcome: 'failed', reason: 'bank says it bounced' },
    });
    t.is(refused.status, 409, refused.text);
    t.like(refused.body.data, { providerStatus: 'paid', overridable: true });
    t.like(await accountMoney(system, order.accountId), { reserved: 2_500n }, 'the guard keeps the money held');

    const viewer = await ops.vera.call('POST', `/admin/console/api/orders/${order.orderId}/override`, { body: { reason: 'viewer tries' } });
    t.is(viewer.status, 403);
    const requested = await ops.otto.call('POST', `/admin/console/api/orders/${order.orderId}/override`, {
      body: { reason: 'bank confirmed the funds came back' },
    });
    t.is(requested.status, 202, requested.text);
    const second = await ops.olga.call('POST', `/admin/console/api/orders/${order.orderId}/override`, { body: { reason: 'me too' } });
    t.is(second.status, 409, 'one override request per order at a time');
    t.is(await orderStatus(system, order.orderId), 'manual');

    const approvalId = requested.body.data.approvalId as string;
    t.is((await ops.otto.call('POST', `/admin/console/api/approvals/${approvalId}/approve`, { body: {} })).status, 403);
    const approved = await ops.ada.call('POST', `/admin/console/api/approvals/${approvalId}/approve`, { body: {} });
    t.is(approved.status, 200, approved.text);
    t.like(approved.body.data, { status: 'approved', outcome: 'resolved', result: { providerStatus: 'paid', status: 'failed' } });
    t.is(await orderStatus(system, order.orderId), 'failed');
    t.like(await accountMoney(system, order.accountId), { balance: 10_000n, available: 10_000n, reserved: 0n }, 'released once');
    const again = await ops.april.call('POST', `/admin/console/api/approvals/${approvalId}/approve`, { body: {} });
    t.is(again.body.msg, 'already approved');
    t.like(await accountMoney(system, order.accountId), { available: 10_000n });

    const history = await system.db.databases.balance.one(sql.type(z.object({ actorId: z.string(), evidence: z.record(z.unknown()) }))`
    select actor_id as "actorId", evidence from withdraw_status_history where order_id = ${order.orderId} and to_status = 'failed'`);
    t.is(history.actorId, 'otto+ada');
    t.like(history.evidence, { override: true, providerStatus: 'paid', approvalId });
    const audit = await auditWhere(system, `order:${order.orderId}`);
    t.deepEqual(
      audit.map((row) => [row.operator, row.action, row.details.override, row.details.maker]),
      [['ada', 'withdraw.resolve', true, 'otto']],
    );
    const queries = await system.db.databases.balance.anyFirst(sql.type(z.object({ result: z.string() }))`
    select result from gateway_status_queries where transaction_id = ${order.transactionId} order by id`);
    t.deepEqual(queries, ['paid', 'paid'], "the provider's answer at refusal and at approval are on record");
  },
);

test.serial('when many jobs are retried at once, then it waits for a second operator, and approval resets them all', async (t) => {
  const ids = [await failedJob(system), await failedJob(system), await failedJob(system)];
  const single = await ops.otto.call('POST', '/admin/console/api/jobs/retry', { body: { jobIds: [ids[0]], reason: 'one' } });
  t.is(single.status, 400, 'a bulk retry is two jobs or more (one job has its own retry)');
  t.is((await ops.vera.call('POST', '/admin/console/api/jobs/retry', { body: { jobIds: ids, reason: 'viewer' } })).status, 403);
  const requested = await ops.otto.call('POST', '/admin/console/api/jobs/retry', { body: { jobIds: ids, reason: 'provider is back' } });
  t.is(requested.status, 202, requested.text);
  const attempts = () =>
    system.db.databases.balance.anyFirst(sql.type(z.object({ attempts: z.number() }))`
      select attempts from graphile_worker._private_jobs where id = any(${sql.array(ids, 'int8')}) order by id`);
  t.deepEqual(await attempts(), [3, 3, 3]);
  const approved = await ops.arno.call('POST', `/admin/console/api/approvals/${requested.body.data.approvalId}/approve`, { body: {} });
  t.is(approved.status, 200, approved.text);
  t.like(approved.body.data, { status: 'approved', outcome: 'retried', result: { retried: 3 } });
  t.deepEqual(await attempts(), [0, 0, 0]);
  const audit = await auditWhere(system, 'jobs:3');
  t.like(audit.at(-1), { operator: 'arno', action: 'jobs.retry', details: { maker: 'otto', retried: 3 } });
});

test('when the admin token credits through the admin API, then it is credited at once: a machine identity, not subject to dual control', async (t) => {
  const accountId = await system.fundedAccount('dc-token', '10.00');
  t.like(await accountMoney(system, accountId), { balance: 1_000n });
  const audit = await auditWhere(system, `account:${accountId}`);
  t.like(audit[0], { operator: 'admin', operatorId: null, action: 'account.credit' });
});
