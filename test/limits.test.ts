// Withdraw limits: per order and per rolling 24 hours (per user and currency), checked inside the
// reservation transaction; an account's own limit wins over its currency's default. The tests
// share the simulator's knobs and the currency defaults, so they run one after another.
import test from 'ava';
import { sql } from 'slonik';
import { v7 as uuidv7 } from 'uuid';
import { z } from 'zod';
import { accountMinor } from './helpers/asyncChecks.ts';
import { call, type JsonReply } from './helpers/http.ts';
import { startTestSystem, type TestSystem } from './helpers/system.ts';

const OPERATOR = { name: 'dora', token: 'dora-operator-token-0123456789' };

let system: TestSystem;
test.before(async () => {
  system = await startTestSystem({ worker: true, env: { ADMIN_TOKENS: `${OPERATOR.name}:${OPERATOR.token}` } });
});
test.after.always(async () => {
  await system?.stop();
});

const count = z.object({ n: z.number() });

function setAccountLimits(accountId: string, body: unknown, token = system.adminToken): Promise<JsonReply> {
  return call(system.url, 'PUT', `/admin/accounts/${accountId}/limits`, { token, body });
}
function setDefaults(currency: string, body: unknown): Promise<JsonReply> {
  return call(system.url, 'PUT', `/admin/limits/${currency}`, { token: system.adminToken, body });
}
async function withdraw(userId: string, accountId: string, amount: string, key = uuidv7()): Promise<JsonReply> {
  return system.withdraw(await system.userToken(userId), { fromAccountId: accountId, toAccountId: `bank-${userId}`, amount }, key);
}
const outcome = (reply: JsonReply) => (reply.status === 202 ? 'accepted' : `${reply.status}/${reply.body?.code}`);

/** the limit changes recorded for a subject (a credit is audited under its account too) */
async function auditRows(subject: string) {
  return system.db.databases.balance.any(sql.type(z.object({ operator: z.string(), action: z.string(), details: z.record(z.unknown()) }))`
    select operator, action, details from admin_audit_log
     where subject = ${subject} and action in ('account.limits', 'limits.default') order by id`);
}
async function openSumMinor(userId: string, currency = 'USD'): Promise<bigint> {
  return system.db.databases.balance.oneFirst(sql.type(z.object({ sum: z.bigint() }))`
    select coalesce(sum(amount_minor), 0)::bigint as sum from withdraw_orders
     where user_id = ${userId} and currency = ${currency} and status <> 'failed' and created_at > now() - interval '24 hours'`);
}

test.serial('when an order is above the per-order maximum, then it gets 422 42204, stored and replayed', async (t) => {
  const accountId = await system.fundedAccount('lim-order', '100.00');
  const set = await setAccountLimits(accountId, { orderMax: '10.00' });
  t.is(set.status, 200, set.text);
  t.like(set.body.data, { accountId, orderMax: '10.00', dailyMax: null });

  const key = uuidv7();
  const refused = await withdraw('lim-order', accountId, '10.01', key);
  t.is(refused.status, 422, refused.text);
  t.is(refused.body.code, 42204);
  t.is(refused.headers.get('idempotent-replayed'), null);
  const replayed = await withdraw('lim-order', accountId, '10.01', key);
  t.is(replayed.status, 422);
  t.deepEqual(replayed.body, refused.body);
  t.is(replayed.headers.get('idempotent-replayed'), 'true');
  const stored = await system.db.databases.balance.one(sql.type(
    z.object({ status: z.number(), orderId: z.string().nullable(), code: z.number() }),
  )`
    select response_status as status, order_id as "orderId", (response_body ->> 'code')::int as code
      from idempotency_keys where user_id = 'lim-order' and idempotency_key = ${key}`);
  t.deepEqual(stored, { status: 422, orderId: null, code: 42204 });
  t.is(
    await system.db.databases.balance.oneFirst(sql.type(count)`select count(*)::int as n from withdraw_orders where user_id = 'lim-order'`),
    0,
  );
  t.like(await accountMinor(system.db.databases.balance, accountId), { available: 10_000n, reserved: 0n });

  t.is((await withdraw('lim-order', accountId, '10.00')).status, 202, 'exactly the maximum is allowed');
  // clearing the limit (null) lifts it
  t.is((await setAccountLimits(accountId, { orderMax: null })).status, 200);
  t.is((await withdraw('lim-order', accountId, '50.00')).status, 202);
});

test.serial(
  'when 100 requests race against a daily maximum, then exactly the ones that fit are accepted and the window never exceeds it',
  async (t) => {
    const accountId = await system.fundedAccount('lim-daily', '1000.00');
    t.is((await setAccountLimits(accountId, { dailyMax: '37.00' })).status, 200);
    const replies = await Promise.all(Array.from({ length: 100 }, () => withdraw('lim-daily', accountId, '1.00')));
    const outcomes = replies.map(outcome);
    t.is(outcomes.filter((o) => o === 'accepted').length, 37, JSON.stringify(outcomes));
    t.is(outcomes.filter((o) => o === '422/42204').length, 63);
    t.is(await openSumMinor('lim-daily'), 3_700n);
    const orderIds = replies.filter((r) => r.status === 202).map((r) => r.body.data.withdrawOrderId as string);
    await system.waitForOrders(orderIds, ['success']);
    // paid orders still count against the window
    t.is(outcome(await withdraw('lim-daily', accountId, '0.01')), '422/42204');
    t.like(await accountMinor(system.db.databases.balance, accountId), { balance: 100_000n - 3_700n, reserved: 0n });

    // the window rolls: orders older than 24 hours no longer count
    const b = await system.db.client('balance');
    await b.query('begin');
    await b.query('set local session_replication_role = replica'); // created_at is immutable for the app
    await b.query(`update withdraw_orders set created_at = now() - interval '24 hours 1 minute' where user_id = 'lim-daily'`);
    await b.query('commit');
    t.is(outcome(await withdraw('lim-daily', accountId, '37.00')), 'accepted');
    t.is(outcome(await withdraw('lim-daily', accountId, '0.01')), '422/42204');
  },
);

test.serial('when an order fails, then it no longer counts against the daily window', async (t) => {
  const accountId = await system.fundedAccount('lim-failed', '100.00');
  t.is((await setAccountLimits(accountId, { dailyMax: '10.00' })).status, 200);
  system.sim!.setKnobs({ rejectRate: 1 });
  try {
    const first = await withdraw('lim-failed', accountId, '6.00');
    t.is(first.status, 202);
    const statuses = await system.waitForOrders([first.body.data.withdrawOrderId], ['success', 'failed', 'manual']);
    t.is(statuses.get(first.body.data.withdrawOrderId), 'failed');
  } finally {
    system.sim!.setKnobs({ rejectRate: 0 });
  }
  t.is(outcome(await withdraw('lim-failed', accountId, '10.00')), 'accepted', 'the failed 6.00 is not counted');
  t.is(outcome(await withdraw('lim-failed', accountId, '0.01')), '422/42204');
  t.is(await openSumMinor('lim-failed'), 1_000n);
});

test.serial("when an account has its own limit, then it wins over the currency's default", async (t) => {
  const defaults = await setDefaults('GBP', { orderMax: '5.00', dailyMax: '20.00' });
  t.is(defaults.status, 200, defaults.text);
  t.like(defaults.body.data, { currency: 'GBP', orderMax: '5.00', dailyMax: '20.00' });
  try {
    const plain = await system.fundedAccount('lim-gbp-plain', '100.00', 'GBP');
    const higher = await system.fundedAccount('lim-gbp-higher', '100.00', 'GBP');
    const lower = await system.fundedAccount('lim-gbp-lower', '100.00', 'GBP');
    t.is((await setAccountLimits(higher, { orderMax: '8.00' })).status, 200);
    t.is((await setAccountLimits(lower, { orderMax: '3.00', dailyMax: '50.00' })).status, 200);

    t.is(outcome(await withdraw('lim-gbp-plain', plain, '5.01')), '422/42204', 'the default applies');
    for (let i = 0; i < 4; i += 1) t.is(outcome(await withdraw('lim-gbp-plain', plain, '5.00')), 'accepted');
    t.is(outcome(await withdraw('lim-gbp-plain', plain, '0.01')), '422/42204', 'the default daily maximum applies');

    t.is(outcome(await withdraw('lim-gbp-higher', higher, '8.00')), 'accepted', 'its own higher maximum wins');
    t.is(outcome(await withdraw('lim-gbp-higher', higher, '8.01')), '422/42204');
    t.is(outcome(await withdraw('lim-gbp-lower', lower, '3.01')), '422/42204', 'its own lower maximum wins');
    for (let i = 0; i < 8; i += 1)
      t.is(outcome(await withdraw('lim-gbp-lower', lower, '3.00')), 'accepted', `its own daily maximum wins (${i})`);
    // without its own order maximum, the account falls back to the default
    t.is((await setAccountLimits(higher, { orderMax: null })).status, 200);
    t.is(outcome(await withdraw('lim-gbp-higher', higher, '5.01')), '422/42204');
    // another currency is not affected by the GBP default
    const usd = await system.fundedAccount('lim-gbp-plain', '100.00', 'USD');
    t.is(outcome(await withdraw('lim-gbp-plain', usd, '50.00')), 'accepted');
  } finally {
    t.is((await setDefaults('GBP', { orderMax: null, dailyMax: null })).status, 200);
  }
  const gone = await system.fundedAccount('lim-gbp-after', '100.00', 'GBP');
  t.is(outcome(await withdraw('lim-gbp-after', gone, '50.00')), 'accepted', 'a cleared default limits nothing');
});

test.serial('when a limit value is invalid, then it is refused with 400 and nothing is written', async (t) => {
  const accountId = await system.fundedAccount('lim-bad', '100.00');
  const jpy = await system.fundedAccount('lim-bad-jpy', '1000', 'JPY');
  const auditBefore = await system.db.databases.balance.oneFirst(sql.type(count)`select count(*)::int as n from admin_audit_log`);
  for (const body of [
    { orderMax: '-1.00' },
    { orderMax: '0' },
    { orderMax: '0.00' },
    { orderMax: '1.001' },
    { orderMax: 'abc' },
    { orderMax: '' },
    { dailyMax: true },
    { dailyMax: {} },
    { dailyMax: '10000000000000' },
    { dailyMax: ' 5.00' },
    'not an object',
  ]) {
    const reply = await setAccountLimits(accountId, body);
    t.is(reply.status, 400, `${JSON.stringify(body)}: ${reply.text}`);
    t.is(reply.body.code, 40001);
  }
  const raw = await call(system.url, 'PUT', `/admin/accounts/${accountId}/limits`, {
    token: system.adminToken,
    rawBody: '{"orderMax": -5}',
  });
  t.is(raw.status, 400, raw.text);
  const fractionalYen = await setAccountLimits(jpy, { orderMax: '1.5' });
  t.is(fractionalYen.status, 400);
  t.regex(fractionalYen.body.msg, /orderMax/);
  t.is((await setDefaults('XYZ', { orderMax: '1.00' })).status, 400);
  t.is((await setDefaults('USD', { dailyMax: '-3' })).status, 400);
  t.is((await setAccountLimits('0190a0d2-5f0e-7c3a-8b1e-1234567890ab', { orderMax: '1.00' })).status, 404);
  t.is(
    (await call(system.url, 'PUT', `/admin/accounts/${accountId}/limits`, { token: 'wrong-token-0123456789', body: { orderMax: '1.00' } }))
      .status,
    401,
  );

  t.is(await system.db.databases.balance.oneFirst(sql.type(count)`select count(*)::int as n from admin_audit_log`), auditBefore);
  const stored = await system.db.databases.balance.one(sql.type(
    z.object({ orderMax: z.bigint().nullable(), dailyMax: z.bigint().nullable() }),
  )`
    select withdraw_order_max_minor as "orderMax", withdraw_daily_max_minor as "dailyMax" from accounts where id = ${accountId}`);
  t.deepEqual(stored, { orderMax: null, dailyMax: null });
  t.is(
    await system.db.databases.balance.oneFirst(
      sql.type(count)`select count(*)::int as n from withdraw_limit_defaults where currency = 'USD'`,
    ),
    0,
  );
});

test.serial(
  'when limits are set, then each change is in the audit trail with its operator, and the reply shows the limits in force',
  async (t) => {
    const accountId = await system.fundedAccount('lim-audit', '100.00');
    const first = await setAccountLimits(accountId, { orderMax: 10 }, OPERATOR.token);
    t.is(first.status, 200, first.text);
    t.like(first.body.data, { accountId, orderMax: '10.00', dailyMax: null });
    const second = await call(system.url, 'PUT', `/admin/accounts/${accountId}/limits`, {
      token: system.adminToken,
      headers: { 'x-operator': 'erin' },
      body: { dailyMax: '50' },
    });
    t.is(second.status, 200, second.text);
    t.like(second.body.data, { accountId, orderMax: '10.00', dailyMax: '50.00' }, 'the order maximum set before is still in force');
    const stored = await system.db.databases.balance.one(sql.type(
      z.object({ orderMax: z.bigint().nullable(), dailyMax: z.bigint().nullable() }),
    )`
    select withdraw_order_max_minor as "orderMax", withdraw_daily_max_minor as "dailyMax" from accounts where id = ${accountId}`);
    t.deepEqual(stored, { orderMax: 1_000n, dailyMax: 5_000n });

    const audit = await auditRows(`account:${accountId}`);
    t.is(audit.length, 2);
    t.like(audit[0], { operator: OPERATOR.name, action: 'account.limits', details: { orderMax: '10.00', dailyMax: null } });
    // the shared token is the identity: the X-Operator header it came with names no one
    t.like(audit[1], { operator: 'admin', action: 'account.limits', details: { orderMax: '10.00', dailyMax: '50.00' } });
    t.false(JSON.stringify(audit).includes('erin'), 'a header the caller sets never reaches the audit trail');
    t.deepEqual(
      audit.map((row) => row.details.changed),
      [['orderMax'], ['dailyMax']],
    );

    t.is((await setDefaults('EUR', { orderMax: '100.00', dailyMax: null })).status, 200);
    const defaults = await auditRows('currency:EUR');
    t.is(defaults.length, 1);
    t.like(defaults[0], { operator: 'admin', action: 'limits.default', details: { orderMax: '100.00', dailyMax: null } });
    t.is((await setDefaults('EUR', { orderMax: null, dailyMax: null })).status, 200);
    t.is((await auditRows('currency:EUR')).length, 2);
  },
);
