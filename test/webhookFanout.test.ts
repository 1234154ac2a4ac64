// The fan-out of outgoing events in the Balance relay (webhook_enqueue_events): every state change
// of an order that an endpoint subscribed to becomes one event and one delivery per endpoint, in
// the relay's transaction, once; relays that claim one order's changes out of order still never
// leave a delivery without the deliveries of the changes before it; a reversal after payment is
// announced once.
import test from 'ava';
import pg from 'pg';
import { v4 as uuidv4 } from 'uuid';
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

const SECRET = 'whsec_test_0123456789abcdef0123456789abcdef';

async function endpoint(url: string, types: string[]): Promise<string> {
  const { rows } = await balance.query<{ id: string }>(
    `insert into webhook_endpoints (url, event_types, secret, created_by) values ($1, $2, $3, 'test') returning id`,
    [url, types, SECRET],
  );
  return rows[0]!.id;
}

async function placeOrder(userId: string): Promise<{ orderId: string; transactionId: string }> {
  await system.fundedAccount(userId, '100.00');
  const reply = await system.withdraw(await system.userToken(userId), { toAccountId: 'bank-1', amount: '1.00' });
  if (reply.status !== 202) throw new Error(reply.text);
  return { orderId: reply.body.data.withdrawOrderId, transactionId: reply.body.data.transactionId };
}

async function transition(transactionId: string, from: string[], to: string): Promise<void> {
  const { rows } = await balance.query<{ outcome: string }>(
    `select outcome from withdraw_transition($1, $2, $3, 'job', 'test', 'test transition')`,
    [transactionId, from, to],
  );
  if (rows[0]?.outcome !== 'changed') throw new Error(`transition to ${to}: ${rows[0]?.outcome}`);
}

async function relayAll(): Promise<void> {
  for (let pass = 0; pass < 100; pass += 1) {
    const { rows } = await balance.query<{ n: number }>('select outbox_relay_balance(500) as n');
    if (rows[0]!.n === 0) return;
  }
  throw new Error('the outbox did not drain in 100 passes');
}

async function deliveriesOf(orderId: string) {
  const { rows } = await balance.query<{ endpoint: string; type: string; rank: number; status: string; data: any }>(
    `select d.endpoint_id as endpoint, e.type, d.rank, d.status, e.data
       from webhook_deliveries d join webhook_events e on e.id = d.event_id
      where d.order_id = $1 order by d.endpoint_id, d.rank`,
    [orderId],
  );
  return rows;
}

test.serial(
  'when an order changes state, then each subscribed endpoint gets one delivery per change, with the order as it was',
  async (t) => {
    await relayAll();
    const all = await endpoint('http://127.0.0.1:9/all', ['withdraw.processing', 'withdraw.success', 'withdraw.failed']);
    const finals = await endpoint('http://127.0.0.1:9/finals', ['withdraw.success']);
    const order = await placeOrder('fanout-alice');
    await transition(order.transactionId, ['init'], 'processing');
    await relayAll();
    await transition(order.transactionId, ['processing'], 'success');
    await relayAll();
    await relayAll();

    const rows = await deliveriesOf(order.orderId);
    t.deepEqual(
      rows.map((r) => [r.endpoint, r.type, r.status]),
      [
        [all, 'withdraw.processing', 'pending'],
        [all, 'withdraw.success', 'pending'],
        [finals, 'withdraw.success', 'pending'],
      ].sort((a, b) => (a[0]! < b[0]! ? -1 : a[0]! > b[0]! ? 1 : 0)),
    );
    const processing = rows.find((r) => r.type === 'withdraw.processing')!.data;
    t.is(processing.status, 'processing', 'the event shows the order as it was at that change, not as it is now');
    t.deepEqual(Object.keys(processing), [
      'withdrawOrderId',
      'transactionId',
      'status',
      'amount',
      'currency',
      'fromAccountId',
      'toAccountId',
      'createdAt',
      'updatedAt',
    ]);
    t.is(processing.amount, '1.00');
    // each endpoint's delivery job was enqueued in the relay's transaction, one per endpoint
    const { rows: jobs } = await balance.query<{ key: string }>(
      `select key from graphile_worker.jobs where task_identifier = 'webhook__deliver' order by key`,
    );
    t.deepEqual(jobs.map((j) => j.key).sort(), [`webhook-deliver:${all}`, `webhook-deliver:${finals}`].sort());
    await balance.query(`update webhook_endpoints set status = 'deleted' where id = any($1)`, [[all, finals]]);
  },
);

test.serial(
  'when two relays claim the changes of one order out of order, then the later change never has a delivery without the earlier one',
  async (t) => {
    await relayAll();
    const ep = await endpoint('http://127.0.0.1:9/order', ['withdraw.processing', 'withdraw.manual', 'withdraw.failed']);
    const order = await placeOrder('fanout-bob');
    await relayAll();
    await transition(order.transactionId, ['init'], 'processing');
    await transition(order.transactionId, ['processing'], 'manual');
    await transition(order.transactionId, ['manual'], 'failed');
    // another relay holds the first two changes (claimed, not yet committed) while this one runs
    const holder = await system.db.client('balance');
    await holder.query('begin');
    const held = await holder.query<{ id: string }>(
      `select id from outbox where transaction_id = $1 and topic in ('withdraw.processing', 'withdraw.manual') for update`,
      [order.transactionId],
    );
    t.is(held.rows.length, 2);
    const { rows: relayed } = await balance.query<{ n: number }>('select outbox_relay_balance(500) as n');
    t.true(relayed[0]!.n >= 1);
    const rows = await deliveriesOf(order.orderId);
    t.deepEqual(
      rows.map((r) => r.type),
      ['withdraw.processing', 'withdraw.manual', 'withdraw.failed'],
      'the relay that saw only the last change fanned out the earlier ones first',
    );
    t.is(rows.find((r) => r.type === 'withdraw.failed')!.data.failureReason, 'test transition');
    await holder.query('rollback');
    await relayAll();
    t.is((await deliveriesOf(order.orderId)).length, 3, 'the held changes, relayed later, add nothing');
    t.true(rows.every((r) => r.endpoint === ep));
    await balance.query(`update webhook_endpoints set status = 'deleted' where id = $1`, [ep]);
  },
);

test.serial('when no endpoint subscribes, or an endpoint was registered after the change, then the change makes no event', async (t) => {
  await relayAll();
  const order = await placeOrder('fanout-carol');
  await transition(order.transactionId, ['init'], 'processing');
  await relayAll();
  const ep = await endpoint('http://127.0.0.1:9/late', ['withdraw.processing', 'withdraw.success']);
  const other = await endpoint('http://127.0.0.1:9/other', ['withdraw.manual']);
  await transition(order.transactionId, ['processing'], 'success');
  await relayAll();
  const rows = await deliveriesOf(order.orderId);
  t.deepEqual(
    rows.map((r) => [r.endpoint, r.type]),
    [[ep, 'withdraw.success']],
  );
  await balance.query(`update webhook_endpoints set status = 'deleted' where id = any($1)`, [[ep, other]]);
});

test.serial('when the provider reports failed for a paid order, twice, then one withdraw.reversed event and no money moves', async (t) => {
  await relayAll();
  const ep = await endpoint('http://127.0.0.1:9/reversals', ['withdraw.success', 'withdraw.reversed']);
  const order = await placeOrder('fanout-dave');
  await transition(order.transactionId, ['init'], 'processing');
  await transition(order.transactionId, ['processing'], 'success');
  await relayAll();
  const before = await balance.query(`select balance_minor, available_minor, reserved_minor from accounts where user_id = 'fanout-dave'`);
  for (const _ of [1, 2]) {
    await balance.query(
      `insert into gateway_inbox (event_id, reference, status, failure_code, occurred_at, payload, signed_at)
       values ($1, $2, 'failed', 'bank_returned', now(), '{}', now())`,
      [uuidv4(), order.transactionId],
    );
  }
  const { rows: applied } = await balance.query<{ outcome: string }>('select outcome from gateway_inbox_apply(10)');
  t.deepEqual(
    applied.map((r) => r.outcome),
    ['contradiction', 'contradiction'],
  );
  const { rows: outbox } = await balance.query(`select 1 from outbox where transaction_id = $1 and topic = 'withdraw.reversed'`, [
    order.transactionId,
  ]);
  t.is(outbox.length, 1, 'announced once');
  const after = await balance.query(`select balance_minor, available_minor, reserved_minor from accounts where user_id = 'fanout-dave'`);
  t.deepEqual(after.rows, before.rows, 'a reversal moves no money');
  await relayAll();
  const rows = await deliveriesOf(order.orderId);
  t.deepEqual(
    rows.map((r) => r.type),
    ['withdraw.success', 'withdraw.reversed'],
  );
  const reversed = rows[1]!.data;
  t.is(reversed.status, 'success');
  t.is(reversed.reversal.failureCode, 'bank_returned');
  const { rows: breaks } = await balance.query(
    `select seen_count from reconciliation_breaks where category = 'callback_contradicts_final' and order_id = $1 and resolved_at is null`,
    [order.orderId],
  );
  t.is(breaks.length, 1, 'the reconciliation break is kept');
  await balance.query(`update webhook_endpoints set status = 'deleted' where id = $1`, [ep]);
});
