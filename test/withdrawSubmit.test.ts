// POST /withdraw/submit (internal): only the internal token; the body must match the order with
// that transactionId; idempotent by transactionId (one queued submission at most).
import test from 'ava';
import { sql } from 'slonik';
import { v4 as uuidv4, v7 as uuidv7 } from 'uuid';
import { z } from 'zod';
import { placeMany, placeWithdrawal, type PlacedOrder } from './helpers/asyncChecks.ts';
import { call } from './helpers/http.ts';
import { startTestSystem, TEST_SECRETS, type TestSystem } from './helpers/system.ts';

let system: TestSystem;
test.before(async () => {
  system = await startTestSystem(); // web only: queued submissions stay in the queue to be counted
});
test.after.always(async () => {
  await system?.stop();
});

const TO_ACCOUNT = 'bank-submit-1';

async function order(userId: string, amountMinor = 1_230n): Promise<PlacedOrder & { toAccountId: string }> {
  const accountId = await system.fundedAccount(userId, '100.00');
  const placed = await placeWithdrawal(system, { userId, accountId, amountMinor, toAccountId: TO_ACCOUNT });
  return { ...placed, toAccountId: TO_ACCOUNT };
}

function bodyOf(o: PlacedOrder & { toAccountId: string }, overrides: Record<string, unknown> = {}) {
  return {
    fromAccountId: o.accountId,
    toAccountId: o.toAccountId,
    amount: '12.30',
    userId: o.userId,
    transactionId: o.transactionId,
    ...overrides,
  };
}

async function submitJobs(transactionId?: string): Promise<number> {
  return system.db.databases.balance.oneFirst(sql.type(z.object({ n: z.number() }))`
    select count(*)::int as n from graphile_worker._private_jobs j join graphile_worker._private_tasks k on k.id = j.task_id
     where k.identifier = 'gateway__submit' and (${transactionId ?? null}::text is null or j.payload ->> 'transactionId' = ${transactionId ?? null}::text)`);
}

const submit = (body: unknown, token: string | null = TEST_SECRETS.INTERNAL_TOKEN) =>
  call(system.url, 'POST', '/withdraw/submit', { ...(token === null ? {} : { token }), body });

test.serial('when the caller is not the internal service, then 401 40101 and nothing is queued', async (t) => {
  const o = await order('sub-auth');
  const before = await submitJobs();
  const userToken = await system.userToken('sub-auth');
  for (const [name, token] of [
    ['no token', null],
    ['the user', userToken],
    ['the admin', system.adminToken],
    ['a wrong token', 'test-internal-token-WRONG-012345'],
  ] as const) {
    const reply = await submit(bodyOf(o), token);
    t.is(reply.status, 401, `${name}: ${reply.text}`);
    t.is(reply.body.code, 40101, name);
  }
  // a bad body does not leak past authentication either
  const garbage = await call(system.url, 'POST', '/withdraw/submit', {
    rawBody: '{not json',
    headers: { 'content-type': 'application/json' },
  });
  t.is(garbage.status, 401);
  t.is(await submitJobs(), before);
});

test.serial('when the transactionId names no order, then 404 40401 and nothing is queued', async (t) => {
  const o = await order('sub-404');
  const before = await submitJobs();
  for (const transactionId of [uuidv7(), uuidv4()]) {
    const reply = await submit(bodyOf(o, { transactionId }));
    t.is(reply.status, 404, reply.text);
    t.is(reply.body.code, 40401);
  }
  t.is(await submitJobs(), before);
});

test.serial('when the body does not match the order, then 409 and nothing is queued', async (t) => {
  const o = await order('sub-409');
  const other = await order('sub-409-other');
  const before = await submitJobs();
  const mismatches: Array<[string, Record<string, unknown>]> = [
    ['amount', { amount: '12.31' }],
    ['amount as a number', { amount: 12.29 }],
    ['toAccountId', { toAccountId: 'bank-submit-2' }],
    ['userId', { userId: 'sub-409-other' }],
    ['fromAccountId', { fromAccountId: other.accountId }],
  ];
  for (const [field, override] of mismatches) {
    const reply = await submit(bodyOf(o, override));
    t.is(reply.status, 409, `${field}: ${reply.text}`);
    t.is(reply.body.code, 40902, field);
  }
  t.is(await submitJobs(), before);
});

test.serial('when the body is invalid, then 400 40001 naming the field', async (t) => {
  const o = await order('sub-400');
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ transactionId: 'not-a-uuid' }, /transactionId/],
    [{ fromAccountId: 'nope' }, /fromAccountId/],
    [{ toAccountId: 'has spaces' }, /toAccountId/],
    [{ amount: '12.301' }, /amount/],
    [{ amount: -1 }, /amount/],
    [{ userId: '' }, /userId/],
  ];
  for (const [override, field] of cases) {
    const reply = await submit(bodyOf(o, override));
    t.is(reply.status, 400, `${JSON.stringify(override)}: ${reply.text}`);
    t.is(reply.body.code, 40001);
    t.regex(reply.body.msg, field);
  }
  const { transactionId: _omitted, ...withoutTx } = bodyOf(o);
  t.is((await submit(withoutTx)).status, 400);
});

test.serial('when the body matches, then 202 accepted, and again 202 with still one queued submission', async (t) => {
  const o = await order('sub-ok');
  t.is(await submitJobs(o.transactionId), 0);
  const first = await submit(bodyOf(o));
  t.is(first.status, 202, first.text);
  t.like(first.body, { code: 0, msg: 'accepted', data: { transactionId: o.transactionId, status: 'init' } });
  t.is(await submitJobs(o.transactionId), 1);
  // the same request again, the amount as a JSON number, the ids in upper case: the same submission
  for (const body of [
    bodyOf(o),
    bodyOf(o, { amount: 12.3 }),
    bodyOf(o, { transactionId: o.transactionId.toUpperCase(), fromAccountId: o.accountId.toUpperCase() }),
  ]) {
    const again = await submit(body);
    t.is(again.status, 202, again.text);
    t.is(again.body.data.transactionId, o.transactionId);
  }
  t.is(await submitJobs(o.transactionId), 1, 'one queued submission for the order');
  // nothing but the queue changed: the order is still init, its money still reserved
  const status = await system.db.databases.balance.oneFirst(sql.type(z.object({ status: z.string() }))`
    select status from withdraw_orders where id = ${o.orderId}`);
  t.is(status, 'init');
});

test.serial('when the order has moved past init, then 202 with its status and nothing is queued', async (t) => {
  const { orders } = await placeMany(system, { userId: 'sub-moved', count: 1, amountMinor: 1_230n });
  const o = { ...orders[0]!, toAccountId: 'bank-sub-moved' };
  await system.db.databases.balance.query(sql.unsafe`
    select * from withdraw_transition(${o.transactionId}::uuid, array['init'], 'processing', 'job', 'test', 'moved by the test')`);
  const reply = await submit(bodyOf(o));
  t.is(reply.status, 202, reply.text);
  t.is(reply.body.data.status, 'processing');
  t.is(await submitJobs(o.transactionId), 0);
});
