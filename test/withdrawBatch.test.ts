// POST /withdraw/batch and GET /withdraw/batch/{batchId}: up to 1,000 withdrawals under one
// idempotency key, each item accepted or refused on its own with POST /withdraw's codes, the whole
// reply stored and replayed byte for byte; another user's batch is 404; a batch racing single
// withdrawals on the same account never overdraws it; a batch refused as a whole writes nothing.
import test from 'ava';
import pg from 'pg';
import { v7 as uuidv7 } from 'uuid';
import { invariantBreaks, rowCounts } from './helpers/balanceChecks.ts';
import { call, type JsonReply } from './helpers/http.ts';
import { startTestSystem, type TestSystem } from './helpers/system.ts';

let system: TestSystem;
let balance: pg.Pool;

test.before(async () => {
  system = await startTestSystem({ env: { DB_POOL_SIZE_MAX: '40' } });
  balance = new pg.Pool({ connectionString: system.db.balanceUrl, max: 4 });
});

test.after.always(async () => {
  await balance?.end();
  await system?.stop();
});

function postBatch(token: string, body: unknown, key: string = uuidv7(), rawBody?: string): Promise<JsonReply> {
  return call(system.url, 'POST', '/withdraw/batch', {
    token,
    headers: { 'idempotent-key': key },
    ...(rawBody !== undefined ? { rawBody } : { body }),
  });
}

async function available(accountId: string): Promise<bigint> {
  const { rows } = await balance.query<{ available: string }>('select available_minor::text as available from accounts where id = $1', [
    accountId,
  ]);
  return BigInt(rows[0]!.available);
}

test.serial(
  'when a batch mixes good and bad items, then each is accepted or refused on its own with the codes of POST /withdraw',
  async (t) => {
    const accountId = await system.fundedAccount('batch-alice', '10.00');
    const token = await system.userToken('batch-alice');
    const bobAccount = await system.fundedAccount('batch-bob', '10.00');
    await call(system.url, 'PUT', `/admin/accounts/${accountId}/limits`, { token: system.adminToken, body: { orderMax: '5.00' } });
    const items = [
      { clientReference: 'ok-1', toAccountId: 'bank-1', amount: '1.00' },
      { clientReference: 'bad-amount', toAccountId: 'bank-1', amount: '1.001' },
      { clientReference: 'exp-string', toAccountId: 'bank-1', amount: '1e3' },
      { clientReference: 'bad-to', toAccountId: 'not a bank!', amount: '1.00' },
      { clientReference: 'not-mine', toAccountId: 'bank-1', amount: '1.00', fromAccountId: bobAccount },
      { clientReference: 'no-such', toAccountId: 'bank-1', amount: '1.00', fromAccountId: '01900000-0000-7000-8000-000000000000' },
      { clientReference: 'over-limit', toAccountId: 'bank-1', amount: '6.00' },
      { clientReference: 'ok-2', toAccountId: 'bank-2', amount: 2.5 },
      { clientReference: 'wrong-currency', toAccountId: 'bank-1', amount: '1.00', fromAccountId: accountId, currency: 'EUR' },
      { clientReference: 'ok-3', toAccountId: 'bank-3', amount: '4.00' },
      { clientReference: 'too-much', toAccountId: 'bank-1', amount: '5.00' },
    ];
    const reply = await postBatch(token, { items });
    t.is(reply.status, 202, reply.text);
    t.is(reply.body.code, 0);
    t.deepEqual(Object.keys(reply.body.data), ['batchId', 'items']);
    const byRef = new Map(reply.body.data.items.map((item: any) => [item.clientReference, item]));
    const codes = Object.fromEntries([...byRef].map(([ref, item]: [any, any]) => [ref, item.code]));
    t.deepEqual(codes, {
      'ok-1': 0,
      'bad-amount': 40001,
      'exp-string': 40001,
      'bad-to': 40001,
      'not-mine': 40301,
      'no-such': 40401,
      'over-limit': 42204,
      'ok-2': 0,
      'wrong-currency': 42203,
      'ok-3': 0,
      'too-much': 42202,
    });
    t.deepEqual(
      reply.body.data.items.map((item: any) => item.clientReference),
      items.map((item) => item.clientReference),
      'items come back in the order sent',
    );
    t.regex((byRef.get('bad-amount') as any).msg, /^amount: /);
    t.regex((byRef.get('bad-to') as any).msg, /^toAccountId: /);
    for (const [ref, item] of byRef as Map<string, any>) {
      if (item.code === 0) {
        t.truthy(item.withdrawOrderId, ref);
        const order = await call(system.url, 'GET', `/withdraw/${item.withdrawOrderId}`, { token });
        t.is(order.status, 200);
        t.is(order.body.data.status, 'init');
      } else {
        t.is(item.withdrawOrderId, null, ref);
      }
    }
    t.is(await available(accountId), 250n, '10.00 - 1.00 - 2.50 - 4.00 reserved; the refused items reserved nothing');
    t.deepEqual(await invariantBreaks(balance), []);

    const status = await call(system.url, 'GET', `/withdraw/batch/${reply.body.data.batchId}`, { token });
    t.is(status.status, 200, status.text);
    t.deepEqual(
      status.body.data.items.map((item: any) => [item.clientReference, item.code, item.status]),
      items.map((item) => [item.clientReference, codes[item.clientReference], codes[item.clientReference] === 0 ? 'init' : null]),
    );
    // the status follows the order
    const ok1 = byRef.get('ok-1') as any;
    await balance.query(`select withdraw_transition($1, array['init'], 'processing', 'job', 'test', 'submitted')`, [ok1.transactionId]);
    const later = await call(system.url, 'GET', `/withdraw/batch/${reply.body.data.batchId}`, { token });
    t.is(later.body.data.items[0].status, 'processing');
  },
);

test.serial(
  'when a batch is sent again with its key, then the stored reply comes back byte for byte; another request with the key is 42201',
  async (t) => {
    const accountId = await system.fundedAccount('batch-carol', '100.00');
    const token = await system.userToken('batch-carol');
    const key = uuidv7();
    const items = Array.from({ length: 30 }, (_, i) => ({
      clientReference: `c-${i}`,
      toAccountId: 'bank-9',
      amount: i === 7 ? '1.005' : '1.00',
    }));
    const first = await postBatch(token, { items }, key);
    t.is(first.status, 202, first.text);
    t.is(first.headers.get('idempotent-replayed'), null);
    const counts = await rowCounts(balance);
    const availableAfter = await available(accountId);
    // the same items, the amount written another way: the same request
    const again = await postBatch(token, { items: items.map((item, i) => (i === 3 ? { ...item, amount: 1 } : item)) }, key);
    t.is(again.status, 202);
    t.is(again.text, first.text, 'byte for byte');
    t.is(again.headers.get('idempotent-replayed'), 'true');
    t.deepEqual(await rowCounts(balance), counts, 'a replay writes nothing');
    t.is(await available(accountId), availableAfter);
    const changed = await postBatch(token, { items: items.slice(1) }, key);
    t.is(changed.status, 422, changed.text);
    t.is(changed.body.code, 42201);
    // the key space is shared with single withdrawals: a batch's key is not a withdrawal's
    const single = await system.withdraw(token, { toAccountId: 'bank-9', amount: '1.00' }, key);
    t.is(single.status, 422, single.text);
    t.is(single.body.code, 42201);
    t.deepEqual(await rowCounts(balance), counts);
  },
);

test.serial('when a batch is refused as a whole, then 400 naming why, and nothing is written', async (t) => {
  await system.fundedAccount('batch-dave', '100.00');
  const token = await system.userToken('batch-dave');
  const counts = await rowCounts(balance);
  const item = { clientReference: 'a', toAccountId: 'bank-1', amount: '1.00' };
  const bad: Array<[string, unknown, RegExp]> = [
    ['no items', {}, /^items: /],
    ['empty', { items: [] }, /^items: /],
    ['too many', { items: Array.from({ length: 1_001 }, (_, i) => ({ ...item, clientReference: `r${i}` })) }, /^items: /],
    ['not an array', { items: item }, /^items: /],
    ['item not an object', { items: [item, 'x'] }, /^items\.1: /],
    ['no clientReference', { items: [{ toAccountId: 'bank-1', amount: '1.00' }] }, /^items\.0\.clientReference: /],
    ['bad clientReference', { items: [{ ...item, clientReference: 'a b' }] }, /^items\.0\.clientReference: /],
    ['repeated clientReference', { items: [item, { ...item, amount: '2.00' }] }, /^items\.1\.clientReference: repeats items\.0/],
  ];
  for (const [label, body, msg] of bad) {
    const reply = await postBatch(token, body);
    t.is(reply.status, 400, `${label}: ${reply.text}`);
    t.is(reply.body.code, 40001, label);
    t.regex(reply.body.msg, msg, label);
  }
  const noKey = await call(system.url, 'POST', '/withdraw/batch', { token, body: { items: [item] } });
  t.is(noKey.status, 400);
  t.is(noKey.body.code, 40002);
  const noToken = await call(system.url, 'POST', '/withdraw/batch', { headers: { 'idempotent-key': uuidv7() }, body: { items: [item] } });
  t.is(noToken.status, 401);
  const admin = await postBatch(system.adminToken, { items: [item] });
  t.is(admin.status, 401, 'a batch is a user’s: the admin token is not a user token');
  const notJson = await postBatch(token, undefined, uuidv7(), '{"items": [');
  t.is(notJson.status, 400);
  t.deepEqual(await rowCounts(balance), counts);
});

test.serial('when someone else asks for a batch, then 404 as for orders; an admin sees it', async (t) => {
  await system.fundedAccount('batch-erin', '100.00');
  const erin = await system.userToken('batch-erin');
  const reply = await postBatch(erin, { items: [{ clientReference: 'x', toAccountId: 'bank-1', amount: '1.00' }] });
  const batchId = reply.body.data.batchId as string;
  const frank = await system.userToken('batch-frank');
  for (const [token, status] of [
    [frank, 404],
    [erin, 200],
    [system.adminToken, 200],
  ] as const) {
    const got = await call(system.url, 'GET', `/withdraw/batch/${batchId}`, { token });
    t.is(got.status, status, got.text);
  }
  const missing = await call(system.url, 'GET', `/withdraw/batch/${uuidv7()}`, { token: erin });
  t.is(missing.status, 404);
  t.is(missing.body.code, 40401);
  const garbage = await call(system.url, 'GET', '/withdraw/batch/not-a-uuid', { token: erin });
  t.is(garbage.status, 404);
});

test.serial(
  'when a batch races single withdrawals on the same account, then the account is never overdrawn and every hold has its order',
  async (t) => {
    const accountId = await system.fundedAccount('batch-race', '100.00');
    const token = await system.userToken('batch-race');
    const batches = Array.from({ length: 3 }, (_, b) =>
      postBatch(token, {
        items: Array.from({ length: 60 }, (_, i) => ({ clientReference: `b${b}-${i}`, toAccountId: 'bank-1', amount: '1.00' })),
      }),
    );
    const singles = Array.from({ length: 80 }, () => system.withdraw(token, { toAccountId: 'bank-1', amount: '1.00' }));
    const [batchReplies, singleReplies] = await Promise.all([Promise.all(batches), Promise.all(singles)]);
    let accepted = 0;
    for (const reply of batchReplies) {
      t.is(reply.status, 202, reply.text);
      for (const item of reply.body.data.items) {
        t.true(item.code === 0 || item.code === 42202, JSON.stringify(item));
        if (item.code === 0) accepted += 1;
      }
    }
    for (const reply of singleReplies) {
      t.true(reply.status === 202 || (reply.status === 422 && reply.body.code === 42202), reply.text);
      if (reply.status === 202) accepted += 1;
    }
    t.is(accepted, 100, 'exactly what the account held was accepted, not a cent more');
    t.is(await available(accountId), 0n);
    const { rows } = await balance.query<{ n: number; sum: string }>(
      `select count(*)::int as n, coalesce(sum(amount_minor), 0)::text as sum from withdraw_orders where account_id = $1`,
      [accountId],
    );
    t.deepEqual(rows[0], { n: 100, sum: '10000' });
    t.deepEqual(await invariantBreaks(balance), []);
  },
);
