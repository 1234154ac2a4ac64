// Cases found by reviewing the money path: a lock cycle, a replay that could change, releasing
// money the provider paid, provider evidence jsonb refuses, manual orders the provider can settle,
// and reconciliation's provider checks that must not skip orders.
import test from 'ava';
import { sql } from 'slonik';
import { v7 as uuidv7 } from 'uuid';
import { z } from 'zod';
import { storable } from '../app/gateway/pspHttpAdapter.ts';
import { createPspHttpAdapter } from '../app/gateway/pspHttpAdapter.ts';
import { queryStaleProcessing } from '../reconcile/recovery.ts';
import { runProviderChecks } from '../reconcile/providerChecks.ts';
import { call } from './helpers/http.ts';
import { waitForQuiescence } from './helpers/quiescence.ts';
import { eventually } from './helpers/asyncChecks.ts';
import { closedPort, recoveryConfig, testClock } from './helpers/recoveryHarness.ts';
import { startTestSystem, testConfig, type TestSystem } from './helpers/system.ts';
import { startWebProcess } from '../app/webApp.ts';

let system: TestSystem;
test.before(async () => {
  system = await startTestSystem({ worker: true, env: { IDEMPOTENCY_CACHE_SIZE_MAX: '0' } });
});
test.after.always(async () => {
  await system?.stop();
});

const n = z.object({ n: z.number() });

async function settledOrder(userId: string): Promise<{ orderId: string; transactionId: string; accountId: string }> {
  const accountId = await system.fundedAccount(userId, '100.00');
  const token = await system.userToken(userId);
  const reply = await system.withdraw(token, { toAccountId: 'dest', amount: '10.00' });
  const orderId = reply.body.data.withdrawOrderId as string;
  await system.waitForOrders([orderId], ['success']);
  return { orderId, transactionId: reply.body.data.transactionId as string, accountId };
}

/** An order put in manual the way unknown outcomes put it there, with the provider's truth chosen. */
async function manualOrder(userId: string, providerPaid: boolean) {
  await system.worker!.stop();
  try {
    const accountId = await system.fundedAccount(userId, '100.00');
    const token = await system.userToken(userId);
    const reply = await system.withdraw(token, { toAccountId: 'dest', amount: '25.00' });
    const { withdrawOrderId: orderId, transactionId } = reply.body.data as { withdrawOrderId: string; transactionId: string };
    if (providerPaid) {
      system.sim!.setKnobs({ dropCallbackRate: 1 });
      const payout = await fetch(`${system.simUrl}/payouts`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': transactionId },
        body: JSON.stringify({ reference: transactionId, amount: '25.00', currency: 'USD', destination: 'dest' }),
      });
      t_assert(payout.status === 202, `provider accepted: ${payout.status}`);
      await eventually('the provider to settle the payout paid (its callback dropped)', async () => {
        const record = await fetch(`${system.simUrl}/payouts/${transactionId}`);
        return record.status === 200 && ((await record.json()) as { status?: string }).status === 'paid';
      });
    }
    await system.db.databases.balance.query(sql.unsafe`
      select * from withdraw_transition(${transactionId}, array['init'], 'manual', 'job', 'test', 'outcome unknown', '{}'::jsonb)`);
    return { orderId, transactionId, accountId };
  } finally {
    system.sim!.setKnobs({ dropCallbackRate: 0 });
    // the worker is restarted by the caller when it needs one
  }
}

function t_assert(condition: boolean, message: string): void {
  if (!condition) throw new Error(message);
}

test.serial('when a row referencing the order holds its key lock, then a transition of that order does not wait for it', async (t) => {
  const order = await settledOrder('lock-user');
  const holder = await system.db.client('balance');
  const mover = await system.db.client('balance');
  // a status query row takes FOR KEY SHARE on the order through its foreign key, until commit
  await holder.query('begin');
  await holder.query(`insert into gateway_status_queries (transaction_id, result) values ($1, 'paid')`, [order.transactionId]);
  try {
    await mover.query(`set statement_timeout = '3s'`);
    // withdraw_lock takes the order FOR NO KEY UPDATE, which does not conflict with KEY SHARE
    const { rows } = await mover.query(`select * from withdraw_lock($1)`, [order.transactionId]);
    t.is(rows[0].id, order.orderId);
  } finally {
    await holder.query('rollback');
  }
});

test.serial('when the default account changes after a key was used, then the same key still gets its stored reply', async (t) => {
  const accountId = await system.fundedAccount('replay-user', '100.00');
  const token = await system.userToken('replay-user');
  const key = uuidv7();
  const first = await system.withdraw(token, { toAccountId: 'dest', amount: '1.00' }, key);
  t.is(first.status, 202);
  // a second account makes "the user's only account" ambiguous; closing the first removes it
  await call(system.url, 'POST', '/admin/accounts', { token: system.adminToken, body: { userId: 'replay-user', currency: 'USD' } });
  const again = await system.withdraw(token, { toAccountId: 'dest', amount: '1.00' }, key);
  t.is(again.status, 202);
  t.is(again.text, first.text);
  t.is(again.headers.get('idempotent-replayed'), 'true');
  await call(system.url, 'POST', `/admin/accounts/${accountId}/status`, { token: system.adminToken, body: { status: 'closed' } });
  const afterClose = await system.withdraw(token, { toAccountId: 'dest', amount: '1.00' }, key);
  t.is(afterClose.text, first.text);
  // a different request with that key is still refused
  t.is((await system.withdraw(token, { toAccountId: 'dest', amount: '2.00' }, key)).body.code, 42201);
  // a new key is a new request: the default is now the second (empty) account
  t.is((await system.withdraw(token, { toAccountId: 'dest', amount: '1.00' })).body.code, 42202);
});

test.serial(
  'when an operator resolves failed an order the provider paid, then it is refused and the money stays held; override releases it, audited',
  async (t) => {
    const order = await manualOrder('paid-manual', true);
    const resolve = (body: Record<string, unknown>) =>
      call(system.url, 'POST', `/admin/withdraws/${order.orderId}/resolve`, {
        token: system.adminToken,
        headers: { 'x-operator': 'carol' },
        body,
      });
    const refused = await resolve({ outcome: 'failed', reason: 'looks stuck' });
    t.is(refused.status, 409);
    t.is(refused.body.code, 40902);
    t.regex(refused.body.msg, /provider reports this payout paid/);
    const account = await call(system.url, 'GET', `/admin/accounts/${order.accountId}`, { token: system.adminToken });
    t.like(account.body.data, { reserved: '25.00', available: '75.00' });
    const queries = await system.db.databases.balance.anyFirst(sql.type(z.object({ result: z.string() }))`
    select result from gateway_status_queries where transaction_id = ${order.transactionId}`);
    t.deepEqual(queries, ['paid'], 'the provider was asked and its answer is on record');

    const forced = await resolve({ outcome: 'failed', reason: 'bank confirmed the funds came back', override: true });
    t.is(forced.status, 200);
    t.is(forced.body.data.providerStatus, 'paid');
    const audit = await system.db.databases.balance.one(sql.type(z.object({ operator: z.string(), details: z.record(z.unknown()) }))`
    select operator, details from admin_audit_log where subject = ${`order:${order.orderId}`} and action = 'withdraw.resolve'`);
    t.is(audit.operator, 'admin', 'the shared token is the identity; X-Operator names no one');
    t.like(audit.details, { override: true, providerStatus: 'paid' });
  },
);

test.serial(
  'when the provider never saw the payout, then resolving failed releases it; when it cannot be asked, then 503 and nothing moves',
  async (t) => {
    const unseen = await manualOrder('unseen-manual', false);
    const resolved = await call(system.url, 'POST', `/admin/withdraws/${unseen.orderId}/resolve`, {
      token: system.adminToken,
      body: { outcome: 'failed', reason: 'provider has no record' },
    });
    t.is(resolved.status, 200);
    t.is(resolved.body.data.providerStatus, 'not_found');
    t.like((await call(system.url, 'GET', `/admin/accounts/${unseen.accountId}`, { token: system.adminToken })).body.data, {
      reserved: '0.00',
      available: '100.00',
    });

    // a web process that cannot reach any provider
    const asked = await manualOrder('unreachable-manual', false);
    const blind = await startWebProcess({
      config: testConfig(system.db),
      databases: system.db.databases,
      balanceUrl: system.db.balanceUrl,
      logger: system.logger,
    });
    try {
      const unavailable = await call(blind.url, 'POST', `/admin/withdraws/${asked.orderId}/resolve`, {
        token: system.adminToken,
        body: { outcome: 'failed', reason: 'provider has no record' },
      });
      t.is(unavailable.status, 503);
      t.is(unavailable.body.code, 50301);
      t.like((await call(system.url, 'GET', `/admin/accounts/${asked.accountId}`, { token: system.adminToken })).body.data, {
        reserved: '25.00',
      });
    } finally {
      await blind.close(1_000);
    }
  },
);

test.serial('when the provider knows the outcome of a manual order, then recovery settles it without a human', async (t) => {
  const order = await manualOrder('recovered-manual', true);
  const config = recoveryConfig(system);
  const psp = createPspHttpAdapter({ baseUrl: system.simUrl!, ...config.gateway });
  try {
    const now = testClock().now();
    const summary = await queryStaleProcessing({ databases: system.db.databases, config, psp, logger: system.logger, now });
    t.true(summary.answered >= 1);
  } finally {
    await psp.close();
  }
  const worker = await system.startWorker();
  try {
    const statuses = await system.waitForOrders([order.orderId], ['success']);
    t.is(statuses.get(order.orderId), 'success');
    const history = await system.db.databases.balance.anyFirst(sql.type(z.object({ step: z.string() }))`
      select from_status || '>' || to_status as step from withdraw_status_history where order_id = ${order.orderId} and from_status is not null order by id`);
    t.deepEqual(history, ['init>manual', 'manual>success']);
    await waitForQuiescence(system.db.databases.balance, system.db.databases.ledger);
  } finally {
    await worker.stop();
  }
});

test('when the provider answers with NUL bytes or lone surrogates, then the evidence is still storable as jsonb', async (t) => {
  const odd = storable({ error: { code: 'x\u0000y', 'k\ud800': ['\udc00', 1] }, ok: true }) as Record<string, unknown>;
  const row = await system.db.databases.balance.oneFirst(sql.type(z.object({ v: z.unknown() }))`
    select ${sql.jsonb(odd as Parameters<typeof sql.jsonb>[0])}::jsonb as v`);
  t.deepEqual(row, { error: { code: 'x\ufffdy', 'k\ufffd': ['\ufffd', 1] }, ok: true });
});

test.serial(
  'when reconciliation asks the provider, then each final order is checked once and one it could not ask is asked again next run',
  async (t) => {
    const worker = await system.startWorker();
    try {
      const orders = [await settledOrder('recon-a'), await settledOrder('recon-b')];
      await waitForQuiescence(system.db.databases.balance, system.db.databases.ledger);
      const config = recoveryConfig(system);
      const dead = createPspHttpAdapter({ baseUrl: `http://127.0.0.1:${await closedPort()}`, ...config.gateway, timeoutMs: 300 });
      const live = createPspHttpAdapter({ baseUrl: system.simUrl!, ...config.gateway });
      try {
        // the provider checks (reconcile__provider) keep their own cursor over final orders
        const check = (psp: typeof live) => runProviderChecks({ databases: system.db.databases, psp, config, logger: system.logger });
        const unanswered = await check(dead);
        t.is(unanswered.first.answered, 0);
        t.true(unanswered.first.asked >= orders.length, 'asked, and held: a provider that answers nothing moves no cursor');
        const answered = await check(live);
        const checkedOrders = await system.db.databases.balance.oneFirst(sql.type(n)`
        select count(*)::int as n from withdraw_orders where status in ('success', 'failed')`);
        t.is(answered.first.answered, checkedOrders, 'every final order, including those the dead provider could not answer for');
        t.true(orders.length <= answered.first.answered);
        const again = await check(live);
        t.is(again.first.asked, 0, 'nothing is checked twice (until its recheck, a day later)');
      } finally {
        await dead.close();
        await live.close();
      }
    } finally {
      await worker.stop();
    }
  },
);
