// GET /withdraws: a user's own orders (an admin: anyone's), newest first, filtered, keyset-paged with
// an opaque cursor. Paging never loses or repeats an order while new ones arrive between pages.
import test from 'ava';
import pg from 'pg';
import { v7 as uuidv7 } from 'uuid';
import { call } from './helpers/http.ts';
import { startTestSystem, type TestSystem } from './helpers/system.ts';

let system: TestSystem;
let balance: pg.Pool;

test.before(async () => {
  system = await startTestSystem();
  balance = new pg.Pool({ connectionString: system.db.balanceUrl, max: 4 });
});

test.after.always(async () => {
  await balance?.end();
  await system?.stop();
});

async function placeSingles(token: string, count: number, amount = '1.00'): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i += 1) {
    const reply = await system.withdraw(token, { toAccountId: 'bank-1', amount });
    if (reply.status !== 202) throw new Error(reply.text);
    ids.push(reply.body.data.withdrawOrderId);
  }
  return ids;
}

/** A batch commits its orders with one created_at: the listing must page through the ties by id. */
async function placeBatch(token: string, count: number): Promise<string[]> {
  const items = Array.from({ length: count }, (_, i) => ({
    clientReference: `ref-${uuidv7()}-${i}`,
    toAccountId: 'bank-2',
    amount: '0.50',
  }));
  const reply = await call(system.url, 'POST', '/withdraw/batch', { token, headers: { 'idempotent-key': uuidv7() }, body: { items } });
  if (reply.status !== 202) throw new Error(reply.text);
  return reply.body.data.items.map((item: { withdrawOrderId: string }) => item.withdrawOrderId);
}

async function list(token: string, query: string) {
  return call(system.url, 'GET', `/withdraws${query ? `?${query}` : ''}`, { token });
}

/** Every page from the start, calling `between` after each page; throws when paging does not end. */
async function pageThrough(token: string, query: string, between: () => Promise<void> = async () => {}) {
  const seen: Array<{ withdrawOrderId: string; createdAt: string; status: string }> = [];
  let cursor: string | null = null;
  for (let page = 0; page < 1_000; page += 1) {
    const reply = await list(token, [query, cursor ? `cursor=${cursor}` : ''].filter(Boolean).join('&'));
    if (reply.status !== 200) throw new Error(reply.text);
    seen.push(...reply.body.data.items);
    cursor = reply.body.data.nextCursor;
    if (cursor === null) return seen;
    await between();
  }
  throw new Error('paging did not end after 1,000 pages');
}

test.serial('when new orders arrive between pages, then paging newest first sees every earlier order exactly once', async (t) => {
  await system.fundedAccount('list-alice', '10000.00');
  const token = await system.userToken('list-alice');
  const before = [...(await placeSingles(token, 25)), ...(await placeBatch(token, 40)), ...(await placeSingles(token, 10))];
  let arrivals = 0;
  const seen = await pageThrough(token, 'limit=7', async () => {
    arrivals += 1;
    // new orders, singles and a batch (many with one created_at), land while the client pages
    await placeSingles(token, 2);
    if (arrivals % 3 === 0) await placeBatch(token, 5);
  });
  const ids = seen.map((item) => item.withdrawOrderId);
  t.is(new Set(ids).size, ids.length, 'no order was served twice');
  for (const id of before) t.true(ids.includes(id), `order ${id} was lost`);
  t.true(arrivals >= 10);
  // newest first: the order the database sorts them in, (created_at, id) descending
  const { rows } = await balance.query<{ id: string }>(
    `select id from withdraw_orders where id = any($1) order by created_at desc, id desc`,
    [ids],
  );
  t.deepEqual(
    ids,
    rows.map((r) => r.id),
  );
});

test.serial('when a user lists orders, then only their own; an admin sees anyone’s and may filter by userId', async (t) => {
  await system.fundedAccount('list-bob', '100.00');
  await system.fundedAccount('list-carol', '100.00');
  const bob = await system.userToken('list-bob');
  const carol = await system.userToken('list-carol');
  const bobs = await placeSingles(bob, 3);
  const carols = await placeSingles(carol, 2);
  const mine = await list(bob, 'limit=200');
  t.is(mine.status, 200, mine.text);
  t.deepEqual(mine.body.data.items.map((i: { withdrawOrderId: string }) => i.withdrawOrderId).sort(), [...bobs].sort());
  t.deepEqual(Object.keys(mine.body.data.items[0]).sort(), [
    'amount',
    'createdAt',
    'currency',
    'fromAccountId',
    'status',
    'toAccountId',
    'transactionId',
    'updatedAt',
    'withdrawOrderId',
  ]);
  const spying = await list(bob, 'userId=list-carol');
  t.is(spying.status, 400, spying.text);
  t.is(spying.body.code, 40001);
  t.regex(spying.body.msg, /^userId: /);
  const admin = await list(system.adminToken, 'userId=list-carol');
  t.is(admin.status, 200, admin.text);
  t.deepEqual(admin.body.data.items.map((i: { withdrawOrderId: string }) => i.withdrawOrderId).sort(), [...carols].sort());
  t.true(admin.body.data.items.every((i: { userId: string }) => i.userId === 'list-carol'));
  const everyone = await pageThrough(system.adminToken, 'limit=200');
  for (const id of [...bobs, ...carols]) t.true(everyone.some((i) => i.withdrawOrderId === id));
  const anonymous = await call(system.url, 'GET', '/withdraws');
  t.is(anonymous.status, 401);
});

test.serial('when filtered by status and creation time, then only matching orders, and the filters hold across pages', async (t) => {
  await system.fundedAccount('list-dave', '100.00');
  const token = await system.userToken('list-dave');
  const ids = await placeSingles(token, 6);
  const { rows } = await balance.query<{ transaction_id: string; id: string }>(
    'select id, transaction_id from withdraw_orders where id = any($1) order by id',
    [ids.slice(0, 3)],
  );
  for (const row of rows) {
    await balance.query(`select withdraw_transition($1, array['init'], 'failed', 'job', 'test', 'test rejection', null, 'rejected')`, [
      row.transaction_id,
    ]);
  }
  const failed = await pageThrough(token, 'status=failed&limit=1');
  t.deepEqual(failed.map((i) => i.withdrawOrderId).sort(), rows.map((r) => r.id).sort());
  t.true(failed.every((i) => i.status === 'failed'));
  const open = await pageThrough(token, 'status=init,processing&limit=2');
  t.deepEqual(open.map((i) => i.withdrawOrderId).sort(), ids.slice(3).sort());

  const { rows: times } = await balance.query<{ at: string }>(
    `select to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as at from withdraw_orders where id = $1`,
    [ids[2]],
  );
  const from = times[0]!.at;
  const since = await pageThrough(token, `createdFrom=${from}&limit=2`);
  t.deepEqual(since.map((i) => i.withdrawOrderId).sort(), ids.slice(2).sort(), 'createdFrom is inclusive');
  const until = await pageThrough(token, `createdTo=${from}&limit=2`);
  t.deepEqual(until.map((i) => i.withdrawOrderId).sort(), ids.slice(0, 2).sort(), 'createdTo is exclusive');
});

test.serial('when a parameter is bad, then 400 40001 naming it, and a cursor only works with the filters it came from', async (t) => {
  await system.fundedAccount('list-erin', '100.00');
  const token = await system.userToken('list-erin');
  await placeSingles(token, 3);
  const bad: Array<[string, RegExp]> = [
    ['limit=0', /^limit: /],
    ['limit=201', /^limit: /],
    ['limit=abc', /^limit: /],
    ['limit=1.5', /^limit: /],
    ['limit=-1', /^limit: /],
    ['status=paid', /^status: /],
    ['status=', /^status: /],
    ['createdFrom=yesterday', /^createdFrom: /],
    ['createdFrom=2026-01-01', /^createdFrom: /],
    ['createdFrom=2026-02-01T00:00:00Z&createdTo=2026-01-01T00:00:00Z', /^createdFrom: /],
    ['cursor=garbage!', /^cursor: /],
    ['cursor=eyJ2IjoxfQ', /^cursor: /],
    ['sort=asc', /sort/],
    ['limit=1&limit=2', /^limit: /],
  ];
  for (const [query, msg] of bad) {
    const reply = await list(token, query);
    t.is(reply.status, 400, `${query}: ${reply.text}`);
    t.is(reply.body.code, 40001, query);
    t.regex(reply.body.msg, msg, query);
    t.is(reply.body.data, null);
  }
  const first = await list(token, 'limit=1&status=init');
  const cursor = first.body.data.nextCursor as string;
  t.truthy(cursor);
  const other = await list(token, `limit=1&status=failed&cursor=${cursor}`);
  t.is(other.status, 400, other.text);
  t.regex(other.body.msg, /^cursor: .*other filters/);
  const next = await list(token, `limit=1&status=init&cursor=${cursor}`);
  t.is(next.status, 200, next.text);
  // a cursor is bound to its user's listing too: someone else's is refused, not read
  const foreign = await list(await system.userToken('list-frank'), `limit=1&status=init&cursor=${cursor}`);
  t.is(foreign.status, 400, foreign.text);
});
