// GET /withdraw/{id}?waitMs=N&status=S: answers as soon as the order leaves S (woken by the
// withdraw_status NOTIFY), or at the deadline with the unchanged order.
import test from 'ava';
import { sql } from 'slonik';
import { z } from 'zod';
import { eventually, placeMany } from './helpers/asyncChecks.ts';
import { call, type JsonReply } from './helpers/http.ts';
import { startTestSystem, type TestSystem } from './helpers/system.ts';

/** web only: the test moves the orders itself */
let web: TestSystem;
/** the whole system: the worker and the simulator move them */
let full: TestSystem;

async function statusListenerReady(system: TestSystem): Promise<void> {
  await eventually(
    'the long-poll listener to connect',
    async () =>
      (
        await system.db.databases.balance.anyFirst(sql.type(z.object({ pid: z.number() }))`
    select pid from pg_stat_activity
     where datname = current_database() and application_name = 'withdraw-listen-withdraw-status'
       and (query ilike 'listen%' or query ilike 'select pg_backend_pid%')`)
      ).length > 0,
    20_000,
  );
}

test.before(async () => {
  web = await startTestSystem();
  full = await startTestSystem({ worker: true });
  await statusListenerReady(web);
  await statusListenerReady(full);
});
test.after.always(async () => {
  await full?.stop();
  await web?.stop();
});

/** Moves an order the way the worker would: the transition, then the relay (which wakes long-polls). */
async function transition(system: TestSystem, transactionId: string, from: string, to: string) {
  const { balance } = system.db.databases;
  const outcome = await balance.oneFirst(sql.type(z.object({ outcome: z.string() }))`
    select outcome from withdraw_transition(${transactionId}::uuid, ${sql.array([from], 'text')}, ${to}, 'job', 'test', 'moved by the test')`);
  await balance.query(sql.unsafe`select outbox_relay_balance(1000)`);
  return outcome;
}

/** Waits until the web process holds `count` long polls on the order, parked until it changes. */
async function parked(system: TestSystem, orderId: string, count: number): Promise<void> {
  await eventually(`${count} long polls parked on order ${orderId}`, async () => system.web.longPollsParked(orderId) === count, 10_000, 10);
}

function timedGet(system: TestSystem, path: string, token: string) {
  const started = Date.now();
  let settled = false;
  const reply = call(system.url, 'GET', path, { token, timeoutMs: 40_000 }).then((r) => {
    settled = true;
    return { reply: r, elapsedMs: Date.now() - started };
  });
  return { done: reply, settled: () => settled };
}

test('when the order leaves the awaited status, then the long poll answers before its deadline with the new status', async (t) => {
  const { orders } = await placeMany(web, { userId: 'lp-ann', count: 1, amountMinor: 500n });
  const order = orders[0]!;
  const token = await web.userToken('lp-ann');
  const poll = timedGet(web, `/withdraw/${order.orderId}?waitMs=5000&status=init`, token);
  await parked(web, order.orderId, 1);
  t.false(poll.settled(), 'it waits while the order is init');
  t.is(await transition(web, order.transactionId, 'init', 'processing'), 'changed');
  const { reply, elapsedMs } = await poll.done;
  t.is(reply.status, 200, reply.text);
  t.is(reply.body.data.status, 'processing');
  t.is(reply.body.data.withdrawOrderId, order.orderId);
  t.true(elapsedMs < 5_000, `answered after ${elapsedMs} ms, before the 5000 ms deadline`);
});

test('when several clients wait on the same order, then one change wakes them all', async (t) => {
  const { orders } = await placeMany(web, { userId: 'lp-ben', count: 1, amountMinor: 700n });
  const order = orders[0]!;
  const token = await web.userToken('lp-ben');
  const polls = Array.from({ length: 5 }, (_, i) =>
    timedGet(web, `/withdraw/${order.orderId}?waitMs=8000&status=init`, i % 2 === 0 ? token : web.adminToken),
  );
  await parked(web, order.orderId, polls.length);
  t.true(polls.every((p) => !p.settled()));
  await transition(web, order.transactionId, 'init', 'manual');
  const replies = await Promise.all(polls.map((p) => p.done));
  t.deepEqual(
    replies.map((r) => r.reply.body.data.status),
    polls.map(() => 'manual'),
  );
  t.true(replies.every((r) => r.elapsedMs < 8_000));
});

test('when the order is already past the awaited status, then the long poll answers at once with the current one', async (t) => {
  const { orders } = await placeMany(web, { userId: 'lp-cat', count: 1, amountMinor: 300n });
  const token = await web.userToken('lp-cat');
  const { reply, elapsedMs } = await timedGet(web, `/withdraw/${orders[0]!.orderId}?waitMs=10000&status=processing`, token).done;
  t.is(reply.status, 200);
  t.is(reply.body.data.status, 'init');
  t.true(elapsedMs < 10_000, `${elapsedMs} ms`);
});

test('when nothing changes, then the long poll answers at its deadline with the unchanged order', async (t) => {
  const { orders } = await placeMany(web, { userId: 'lp-dan', count: 1, amountMinor: 300n });
  const token = await web.userToken('lp-dan');
  // without status: waits for a change from what the order is now
  const { reply, elapsedMs } = await timedGet(web, `/withdraw/${orders[0]!.orderId}?waitMs=600`, token).done;
  t.is(reply.status, 200);
  t.is(reply.body.data.status, 'init');
  t.true(elapsedMs >= 500, `waited ${elapsedMs} ms`);
});

test('when waitMs or status is out of range, then 400 40001 naming the parameter', async (t) => {
  const { orders } = await placeMany(web, { userId: 'lp-eve', count: 1, amountMinor: 300n });
  const token = await web.userToken('lp-eve');
  const cases: Array<[string, RegExp]> = [
    ['waitMs=30001', /waitMs/],
    ['waitMs=60000&status=init', /waitMs/],
    ['waitMs=-1', /waitMs/],
    ['waitMs=1.5', /waitMs/],
    ['waitMs=soon', /waitMs/],
    ['waitMs=1000&status=paid', /status/],
  ];
  for (const [query, field] of cases) {
    const reply: JsonReply = await call(web.url, 'GET', `/withdraw/${orders[0]!.orderId}?${query}`, { token });
    t.is(reply.status, 400, `${query}: ${reply.text}`);
    t.is(reply.body.code, 40001);
    t.regex(reply.body.msg, field, query);
  }
  const atMax = await call(web.url, 'GET', `/withdraw/${orders[0]!.orderId}?waitMs=30000&status=processing`, { token });
  t.is(atMax.status, 200, '30000 itself is allowed');
});

test('when another user long-polls an order, then 404 at once, as for a missing one', async (t) => {
  const { orders } = await placeMany(web, { userId: 'lp-fay', count: 1, amountMinor: 300n });
  const other = await web.userToken('lp-mallory');
  const { reply, elapsedMs } = await timedGet(web, `/withdraw/${orders[0]!.orderId}?waitMs=5000&status=init`, other).done;
  t.is(reply.status, 404);
  t.is(reply.body.code, 40401);
  t.true(elapsedMs < 5_000);
});

test('when the worker and the provider move a fresh order, then a long poll on init answers with its next status', async (t) => {
  full.sim!.setKnobs({ latencyMs: 300 });
  const { orders } = await placeMany(full, { userId: 'lp-full', count: 1, amountMinor: 900n });
  const order = orders[0]!;
  const token = await full.userToken('lp-full');
  const { reply, elapsedMs } = await timedGet(full, `/withdraw/${order.orderId}?waitMs=20000&status=init`, token).done;
  t.is(reply.status, 200);
  t.true(['processing', 'success'].includes(reply.body.data.status), reply.body.data.status);
  t.true(elapsedMs < 20_000);
  const final = await timedGet(full, `/withdraw/${order.orderId}?waitMs=20000&status=processing`, token).done;
  t.is(final.reply.body.data.status, 'success');
});
