// I6: one idempotency key → at most one order, and the same response every time. Judged by the
// replies and by the rows in the Balance DB.
import test from 'ava';
import pg from 'pg';
import { v4 as uuidv4, v7 as uuidv7 } from 'uuid';
import { accountNumbers } from './helpers/balanceChecks.ts';
import { call, type JsonReply } from './helpers/http.ts';
import { startTestSystem, type TestSystem } from './helpers/system.ts';
import { createTestDatabases, type TestDatabases } from './helpers/testDatabases.ts';

let db: TestDatabases;
let system: TestSystem;
let balance: pg.Pool;
const extraSystems: TestSystem[] = [];

test.before(async () => {
  db = await createTestDatabases();
  system = await startTestSystem({ db });
  balance = new pg.Pool({ connectionString: db.balanceUrl, max: 4 });
});

test.after.always(async () => {
  await balance?.end();
  for (const other of extraSystems) await other.stop();
  await system?.stop();
  await db?.drop();
});

/** Rows one user's withdrawals left behind: orders, their reservations and outbox events, keys. */
async function userRows(userId: string) {
  const { rows } = await balance.query<{ orders: number; reservations: number; outbox: number; keys: number; history: number }>(
    `select (select count(*)::int from withdraw_orders where user_id = $1) as orders,
            (select count(*)::int from reservations r join withdraw_orders o on o.transaction_id = r.transaction_id
              where o.user_id = $1) as reservations,
            (select count(*)::int from outbox where topic = 'withdraw.created' and payload ->> 'userId' = $1) as outbox,
            (select count(*)::int from withdraw_status_history h join withdraw_orders o on o.id = h.order_id
              where o.user_id = $1) as history,
            (select count(*)::int from idempotency_keys where user_id = $1) as keys`,
    [userId],
  );
  return rows[0]!;
}

function postWithKeyHeader(token: string, header: string, key: string, body: unknown): Promise<JsonReply> {
  return call(system.url, 'POST', '/withdraw', { token, body, headers: { [header]: key } });
}

async function fundedUser(userId: string, amount = '100.00'): Promise<{ token: string; accountId: string }> {
  const accountId = await system.fundedAccount(userId, amount);
  return { token: await system.userToken(userId), accountId };
}

test('when the same key is sent twice with the same body, then the reply is replayed byte for byte and one order exists', async (t) => {
  const { token, accountId } = await fundedUser('idem-same');
  const key = uuidv7();
  const first = await system.withdraw(token, { toAccountId: 'bank-1', amount: '12.30' }, key);
  t.is(first.status, 202, first.text);
  t.is(first.headers.get('idempotent-replayed'), null);
  // the same amount written another way is the same request
  const second = await system.withdraw(token, { toAccountId: 'bank-1', amount: 12.3 }, key);
  t.is(second.status, 202);
  t.is(second.text, first.text);
  t.is(second.headers.get('idempotent-replayed'), 'true');
  const third = await system.withdraw(token, { toAccountId: 'bank-1', amount: '12.30' }, key.toUpperCase());
  t.is(third.text, first.text);
  t.is(third.headers.get('idempotent-replayed'), 'true');

  t.deepEqual(await userRows('idem-same'), { orders: 1, reservations: 1, outbox: 1, history: 1, keys: 1 });
  const account = await accountNumbers(balance, accountId);
  t.deepEqual([account.available, account.reserved], [8770n, 1230n]);
  const order = await balance.query('select id from withdraw_orders where user_id = $1', ['idem-same']);
  t.is(order.rows[0].id, first.body.data.withdrawOrderId);
});

test('when the same key is sent with a different body, then 422 42201 and nothing more is written', async (t) => {
  const { token, accountId } = await fundedUser('idem-diff');
  const key = uuidv7();
  const first = await system.withdraw(token, { toAccountId: 'bank-1', amount: '10.00' }, key);
  t.is(first.status, 202, first.text);
  for (const body of [
    { toAccountId: 'bank-1', amount: '10.01' },
    { toAccountId: 'bank-2', amount: '10.00' },
    { toAccountId: 'bank-1', amount: 1000 },
  ]) {
    const reply = await system.withdraw(token, body, key);
    t.is(reply.status, 422, JSON.stringify(body));
    t.deepEqual(reply.body, { code: 42201, msg: reply.body.msg, data: null });
    t.is(reply.headers.get('idempotent-replayed'), null);
  }
  t.deepEqual(await userRows('idem-diff'), { orders: 1, reservations: 1, outbox: 1, history: 1, keys: 1 });
  t.is((await accountNumbers(balance, accountId)).reserved, 1000n);
});

test('when the key comes in the Idempotency-Key header, then it is the same key as idempotent-key', async (t) => {
  const { token } = await fundedUser('idem-alias');
  const key = uuidv7();
  const body = { toAccountId: 'bank-1', amount: '1.00' };
  const first = await postWithKeyHeader(token, 'Idempotency-Key', key, body);
  t.is(first.status, 202, first.text);
  const replay = await postWithKeyHeader(token, 'idempotent-key', key, body);
  t.is(replay.text, first.text);
  t.is(replay.headers.get('idempotent-replayed'), 'true');
  const both = await call(system.url, 'POST', '/withdraw', {
    token,
    body,
    headers: { 'idempotent-key': key, 'Idempotency-Key': uuidv7() },
  });
  t.is(both.status, 400);
  t.is(both.body.code, 40002);
  t.deepEqual(await userRows('idem-alias'), { orders: 1, reservations: 1, outbox: 1, history: 1, keys: 1 });
});

test('when the key is missing or not a UUIDv7, then 400 40002 and nothing is written', async (t) => {
  const { token, accountId } = await fundedUser('idem-badkey');
  const body = { toAccountId: 'bank-1', amount: '1.00' };
  const replies = [
    await call(system.url, 'POST', '/withdraw', { token, body }),
    await postWithKeyHeader(token, 'idempotent-key', uuidv4(), body),
    await postWithKeyHeader(token, 'Idempotency-Key', uuidv4(), body),
    await postWithKeyHeader(token, 'idempotent-key', 'not-a-uuid', body),
    await postWithKeyHeader(token, 'idempotent-key', '', body),
    await postWithKeyHeader(token, 'idempotent-key', `${uuidv7()}0`, body),
    await postWithKeyHeader(token, 'idempotent-key', uuidv7().replaceAll('-', ''), body),
  ];
  for (const reply of replies) {
    t.is(reply.status, 400, reply.text);
    t.deepEqual(reply.body, { code: 40002, msg: reply.body.msg, data: null });
  }
  t.deepEqual(await userRows('idem-badkey'), { orders: 0, reservations: 0, outbox: 0, history: 0, keys: 0 });
  t.is((await accountNumbers(balance, accountId)).reserved, 0n);
});

test('when a request with the same key is in flight, then 409 40901, and once it is done the key works', async (t) => {
  const userId = 'idem-inflight';
  const { token } = await fundedUser(userId);
  const key = uuidv7();
  const body = { toAccountId: 'bank-1', amount: '5.00' };
  // stand in for the first request: hold the lock withdraw_create takes for (user, key)
  const holder = await db.client('balance');
  await holder.query(`select pg_advisory_lock(hashtextextended($1::text || '/' || $2::text, 7))`, [userId, key]);
  try {
    const blocked = await system.withdraw(token, body, key);
    t.is(blocked.status, 409, blocked.text);
    t.deepEqual(blocked.body, { code: 40901, msg: blocked.body.msg, data: null });
    t.deepEqual(await userRows(userId), { orders: 0, reservations: 0, outbox: 0, history: 0, keys: 0 });
    // another key of the same user is not blocked
    const other = await system.withdraw(token, body);
    t.is(other.status, 202, other.text);
  } finally {
    await holder.query(`select pg_advisory_unlock(hashtextextended($1::text || '/' || $2::text, 7))`, [userId, key]);
  }
  const retried = await system.withdraw(token, body, key);
  t.is(retried.status, 202, retried.text);
  t.is(retried.headers.get('idempotent-replayed'), null);
  t.deepEqual(await userRows(userId), { orders: 2, reservations: 2, outbox: 2, history: 2, keys: 2 });
});

test('when funds are insufficient, then 422 42202 is stored and replayed, even after the account is credited', async (t) => {
  const userId = 'idem-poor';
  const { token, accountId } = await fundedUser(userId, '10.00');
  const key = uuidv7();
  const body = { toAccountId: 'bank-1', amount: '10.01' };
  const first = await system.withdraw(token, body, key);
  t.is(first.status, 422, first.text);
  t.deepEqual(first.body, { code: 42202, msg: first.body.msg, data: null });
  t.is(first.headers.get('idempotent-replayed'), null);
  const stored = await balance.query('select response_status, order_id from idempotency_keys where user_id = $1', [userId]);
  t.deepEqual(stored.rows, [{ response_status: 422, order_id: null }]);

  const credit = await call(system.url, 'POST', `/admin/accounts/${accountId}/credits`, {
    token: system.adminToken,
    body: { amount: '100.00', transactionId: uuidv4() },
  });
  t.is(credit.status, 200, credit.text);
  const replay = await system.withdraw(token, body, key);
  t.is(replay.status, 422);
  t.is(replay.text, first.text);
  t.is(replay.headers.get('idempotent-replayed'), 'true');
  t.deepEqual(await userRows(userId), { orders: 0, reservations: 0, outbox: 0, history: 0, keys: 1 });

  const fresh = await system.withdraw(token, body);
  t.is(fresh.status, 202, fresh.text);
  t.deepEqual(await accountNumbers(balance, accountId), { balance: 11_000n, available: 9_999n, reserved: 1_001n, status: 'active' });
});

test('when 50 requests with the same key arrive at once, then one order exists and every reply is that 202 or a 409', async (t) => {
  const userId = 'idem-storm';
  const { token, accountId } = await fundedUser(userId);
  const key = uuidv7();
  const body = { toAccountId: 'bank-1', amount: '3.00' };
  const replies = await Promise.all(Array.from({ length: 50 }, () => system.withdraw(token, body, key)));
  const accepted = replies.filter((r) => r.status === 202);
  const inFlight = replies.filter((r) => r.status === 409);
  t.is(accepted.length + inFlight.length, 50, replies.map((r) => r.status).join(','));
  t.true(accepted.length >= 1);
  t.is(new Set(accepted.map((r) => r.text)).size, 1);
  t.is(accepted.filter((r) => r.headers.get('idempotent-replayed') === null).length, 1, 'exactly one reply created the order');
  for (const reply of inFlight) t.is(reply.body.code, 40901);
  t.deepEqual(await userRows(userId), { orders: 1, reservations: 1, outbox: 1, history: 1, keys: 1 });
  t.is((await accountNumbers(balance, accountId)).reserved, 300n);

  const after = await system.withdraw(token, body, key);
  t.is(after.text, accepted[0]!.text);
  t.is(after.headers.get('idempotent-replayed'), 'true');
});

test('when two users use the same key, then each gets an order of their own', async (t) => {
  const a = await fundedUser('idem-user-a');
  const b = await fundedUser('idem-user-b');
  const key = uuidv7();
  const replyA = await system.withdraw(a.token, { toAccountId: 'bank-a', amount: '1.00' }, key);
  const replyB = await system.withdraw(b.token, { toAccountId: 'bank-b', amount: '2.00' }, key);
  t.is(replyA.status, 202, replyA.text);
  t.is(replyB.status, 202, replyB.text);
  t.is(replyB.headers.get('idempotent-replayed'), null);
  t.not(replyA.body.data.withdrawOrderId, replyB.body.data.withdrawOrderId);
  t.deepEqual(await userRows('idem-user-a'), { orders: 1, reservations: 1, outbox: 1, history: 1, keys: 1 });
  t.deepEqual(await userRows('idem-user-b'), { orders: 1, reservations: 1, outbox: 1, history: 1, keys: 1 });
  t.is((await accountNumbers(balance, a.accountId)).reserved, 100n);
  t.is((await accountNumbers(balance, b.accountId)).reserved, 200n);
});

test('when the web process restarts, then a replay comes from the database: same body, and a changed body is still 42201', async (t) => {
  const userId = 'idem-restart';
  const { token } = await fundedUser(userId);
  const key = uuidv7();
  const poorKey = uuidv7();
  const body = { toAccountId: 'bank-1', amount: '7.77' };
  const first = await system.withdraw(token, body, key);
  t.is(first.status, 202, first.text);
  const poor = await system.withdraw(token, { toAccountId: 'bank-1', amount: '1000.00' }, poorKey);
  t.is(poor.status, 422, poor.text);

  const restarted = await startTestSystem({ db });
  extraSystems.push(restarted);
  const replay = await restarted.withdraw(token, body, key);
  t.is(replay.status, 202);
  t.is(replay.text, first.text);
  t.is(replay.headers.get('idempotent-replayed'), 'true');
  const poorReplay = await restarted.withdraw(token, { toAccountId: 'bank-1', amount: '1000.00' }, poorKey);
  t.is(poorReplay.text, poor.text);
  t.is(poorReplay.headers.get('idempotent-replayed'), 'true');
  const changed = await restarted.withdraw(token, { ...body, amount: '7.78' }, key);
  t.is(changed.status, 422);
  t.is(changed.body.code, 42201);
  t.deepEqual(await userRows(userId), { orders: 1, reservations: 1, outbox: 1, history: 1, keys: 2 });
});

test('when the in-process cache is turned off, then replays and key reuse behave the same', async (t) => {
  const uncached = await startTestSystem({ db, env: { IDEMPOTENCY_CACHE_SIZE_MAX: '0' } });
  extraSystems.push(uncached);
  const userId = 'idem-nocache';
  const accountId = await uncached.fundedAccount(userId, '50.00');
  const token = await uncached.userToken(userId);
  const key = uuidv7();
  const body = { toAccountId: 'bank-1', amount: '20.00' };
  const replies = await Promise.all(Array.from({ length: 20 }, () => uncached.withdraw(token, body, key)));
  const accepted = replies.filter((r) => r.status === 202);
  t.true(
    replies.every((r) => r.status === 202 || r.status === 409),
    replies.map((r) => r.status).join(','),
  );
  t.is(new Set(accepted.map((r) => r.text)).size, 1);
  const replay = await uncached.withdraw(token, body, key);
  t.is(replay.text, accepted[0]!.text);
  t.is(replay.headers.get('idempotent-replayed'), 'true');
  t.is((await uncached.withdraw(token, { ...body, toAccountId: 'bank-2' }, key)).body.code, 42201);
  t.deepEqual(await userRows(userId), { orders: 1, reservations: 1, outbox: 1, history: 1, keys: 1 });
  t.is((await accountNumbers(balance, accountId)).reserved, 2_000n);
});
