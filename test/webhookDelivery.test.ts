// Outgoing events end to end, against a real HTTP receiver that checks every signature: every
// state change of every order arrives at least once and in order per order; a receiver that is down
// for a while gets everything once it is back; a hanging endpoint slows neither a healthy one nor
// the money path; an endpoint that keeps failing is disabled with a reason; deliveries are listed
// and an operator replays one. Short backoffs (WEBHOOK_RETRY_*), never sleeps.
import test from 'ava';
import pg from 'pg';
import { call } from './helpers/http.ts';
import { startTestSystem, type TestSystem } from './helpers/system.ts';
import { eventually } from './helpers/asyncChecks.ts';
import { startWebhookReceiver, type ReceivedEvent, type WebhookReceiver } from './helpers/webhookReceiver.ts';

let system: TestSystem;
let receiver: WebhookReceiver;
let balance: pg.Pool;

const ALL_TYPES = ['withdraw.processing', 'withdraw.manual', 'withdraw.success', 'withdraw.failed', 'withdraw.reversed'];
const RANK: Record<string, number> = {
  'withdraw.processing': 1,
  'withdraw.manual': 2,
  'withdraw.success': 3,
  'withdraw.failed': 3,
  'withdraw.reversed': 4,
};

test.before(async () => {
  receiver = await startWebhookReceiver();
  system = await startTestSystem({
    worker: true,
    env: {
      WEBHOOK_RETRY_BASE_MS: '20',
      WEBHOOK_RETRY_MAX_MS: '200',
      // long enough (the most there is) that a hanging endpoint's requests are still open when
      // the test looks, on a loaded machine too
      WEBHOOK_TIMEOUT_MS: '60000',
    },
  });
  balance = new pg.Pool({ connectionString: system.db.balanceUrl, max: 4 });
});

test.after.always(async () => {
  // the receiver closes even when stopping the system fails: left listening, it keeps this file's
  // process (and the whole run) alive
  try {
    await balance?.end();
    await system?.stop();
  } finally {
    await receiver?.close();
  }
});

async function register(path: string, events: string[] = ALL_TYPES): Promise<string> {
  const reply = await call(system.url, 'POST', '/admin/webhook-endpoints', {
    token: system.adminToken,
    body: { url: receiver.url(path), events },
  });
  if (reply.status !== 201) throw new Error(reply.text);
  receiver.setSecret(path, reply.body.data.secret);
  return reply.body.data.endpointId;
}

async function unregister(endpointId: string): Promise<void> {
  await call(system.url, 'DELETE', `/admin/webhook-endpoints/${endpointId}`, { token: system.adminToken });
}

async function placeOrders(userId: string, count: number): Promise<string[]> {
  await system.fundedAccount(userId, '1000.00');
  const token = await system.userToken(userId);
  const ids: string[] = [];
  for (let i = 0; i < count; i += 1) {
    const reply = await system.withdraw(token, { toAccountId: 'bank-1', amount: '1.00' });
    if (reply.status !== 202) throw new Error(reply.text);
    ids.push(reply.body.data.withdrawOrderId);
  }
  return ids;
}

async function finalStatuses(orderIds: readonly string[]): Promise<Map<string, string>> {
  const statuses = await system.waitForOrders(orderIds, ['success', 'failed'], 30_000);
  const open = orderIds.filter((id) => !['success', 'failed'].includes(statuses.get(id) ?? ''));
  if (open.length > 0) throw new Error(`orders not final after 30 s: ${open.join(', ')}`);
  return statuses;
}

/** The types each order must get: processing, then its final state. */
function expectedTypes(statuses: Map<string, string>): Map<string, string[]> {
  return new Map([...statuses].map(([id, status]) => [id, ['withdraw.processing', `withdraw.${status}`]]));
}

function byOrder(events: readonly ReceivedEvent[]): Map<string, ReceivedEvent[]> {
  const map = new Map<string, ReceivedEvent[]>();
  for (const event of events) map.set(event.data.withdrawOrderId, [...(map.get(event.data.withdrawOrderId) ?? []), event]);
  return map;
}

/** Every order got each expected type at least once, and never an event after a later one of its order. */
function checkOrdered(t: import('ava').ExecutionContext, events: readonly ReceivedEvent[], expected: Map<string, string[]>): void {
  const received = byOrder(events);
  for (const [orderId, types] of expected) {
    const got = received.get(orderId) ?? [];
    t.deepEqual([...new Set(got.map((e) => e.type))], types, `order ${orderId}: the types, in the order they arrived`);
    for (let i = 1; i < got.length; i += 1) t.true(RANK[got[i - 1]!.type]! <= RANK[got[i]!.type]!, `order ${orderId}: out of order`);
    for (const event of got) t.is(event.data.status, event.type === 'withdraw.reversed' ? 'success' : event.type.slice(9));
  }
}

const hasAll = (events: readonly ReceivedEvent[], expected: Map<string, string[]>) => {
  const seen = new Set(events.map((e) => `${e.data.withdrawOrderId} ${e.type}`));
  return [...expected].every(([id, types]) => types.every((type) => seen.has(`${id} ${type}`)));
};

test.serial('when orders change state, then the receiver gets every change, signed, at least once and in order per order', async (t) => {
  const endpointId = await register('/all');
  system.sim!.setKnobs({ failAfterAcceptRate: 0.3 });
  const orders = await placeOrders('hook-alice', 25);
  const expected = expectedTypes(await finalStatuses(orders));
  system.sim!.setKnobs({ failAfterAcceptRate: 0 });
  await eventually('the receiver has every event', async () => hasAll(receiver.events('/all'), expected), 30_000);
  checkOrdered(t, receiver.events('/all'), expected);
  t.true(
    [...expected.values()].some((types) => types[1] === 'withdraw.failed'),
    'some orders failed',
  );
  t.is(receiver.badSignatures(), 0);
  const processing = receiver.events('/all').find((e) => e.type === 'withdraw.processing')!;
  t.deepEqual(Object.keys(processing.data), [
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
  t.is(processing.data.amount, '1.00');
  // the order in an event is the order as GET /withdraw/{id} showed it at that change
  const final = receiver.events('/all').find((e) => e.type !== 'withdraw.processing')!;
  const order = await call(system.url, 'GET', `/withdraw/${final.data.withdrawOrderId}`, { token: system.adminToken });
  t.deepEqual(final.data, order.body.data);
  await unregister(endpointId);
});

test.serial(
  'when the receiver is down for a while, then the money path goes on and every event arrives, in order, once it is back',
  async (t) => {
    const endpointId = await register('/flaky', ['withdraw.processing', 'withdraw.success', 'withdraw.failed']);
    await receiver.down();
    // the receiver is back for the next tests even when this one fails half-way
    t.teardown(() => receiver.up().catch(() => {}));
    const orders = await placeOrders('hook-bob', 15);
    // the money path does not wait for the receiver
    const expected = expectedTypes(await finalStatuses(orders));
    // in order per order: only the head of each order's chain is tried; the later ones wait behind it
    await eventually(
      'the first delivery of every order was tried and failed, and nothing was delivered',
      async () => {
        const { rows } = await balance.query<{ orders: number; failedHeads: number; done: number }>(
          `select count(distinct d.order_id)::int as orders,
                count(*) filter (where d.status = 'pending' and d.attempts > 0 and d.last_error is not null
                                   and not exists (select 1 from webhook_deliveries p
                                                    where p.endpoint_id = d.endpoint_id and p.order_id = d.order_id
                                                      and p.status = 'pending' and p.rank < d.rank))::int as "failedHeads",
                count(*) filter (where d.status <> 'pending')::int as done
           from webhook_deliveries d where d.endpoint_id = $1`,
          [endpointId],
        );
        const row = rows[0]!;
        return row.orders === orders.length && row.failedHeads === orders.length && row.done === 0;
      },
      30_000,
    );
    t.is(receiver.events('/flaky').length, 0);
    await receiver.up();
    await eventually('the receiver, back, has every event', async () => hasAll(receiver.events('/flaky'), expected), 30_000);
    checkOrdered(t, receiver.events('/flaky'), expected);
    t.is(receiver.badSignatures(), 0);
    const endpoint = await call(system.url, 'GET', `/admin/webhook-endpoints/${endpointId}`, { token: system.adminToken });
    t.like(endpoint.body.data, { status: 'active', consecutiveFailures: 0, failingSince: null });
    await unregister(endpointId);
  },
);

// The same host for both (one receiver): the healthy endpoint's requests never wait for a socket the
// hanging one holds. test/webhookIsolation.test.ts pins each way a hanging endpoint used to delay
// another (a shared socket pool per host; its rounds taking every delivery round of the worker).
test.serial('when one endpoint hangs, then a healthy endpoint and the money path go on without waiting for it', async (t) => {
  const healthy = await register('/healthy', ['withdraw.processing', 'withdraw.success', 'withdraw.failed']);
  const hanging = await register('/hanging', ['withdraw.processing', 'withdraw.success', 'withdraw.failed']);
  receiver.setMode('/hanging', 'hang');
  // failing half-way, it must not leave a hanging endpoint behind to starve the tests after it
  t.teardown(async () => {
    await unregister(hanging).catch(() => {});
    await unregister(healthy).catch(() => {});
    receiver.releaseHanging('/hanging');
  });
  const orders = await placeOrders('hook-carol', 20);
  const expected = expectedTypes(await finalStatuses(orders));
  await eventually('the healthy endpoint has every event', async () => hasAll(receiver.events('/healthy'), expected), 30_000);
  // everything reached the healthy endpoint while the hanging one still holds its first requests open
  t.true(receiver.hanging('/hanging') >= 1, 'the hanging endpoint is still holding requests');
  t.is(receiver.events('/hanging').length, 0);
  checkOrdered(t, receiver.events('/healthy'), expected);
  const { rows } = await balance.query<{ open: number }>(
    `select count(*)::int as open from webhook_deliveries where endpoint_id = $1 and lease_until > now()`,
    [hanging],
  );
  t.true(rows[0]!.open <= system.config.webhooks.endpointConcurrency, 'at most WEBHOOK_ENDPOINT_CONCURRENCY requests open per endpoint');
  // answered at last, it gets everything too, in order
  receiver.releaseHanging('/hanging');
  await eventually('the hanging endpoint, released, has every event', async () => hasAll(receiver.events('/hanging'), expected), 30_000);
  checkOrdered(t, receiver.events('/hanging'), expected);
});

test.serial(
  'when an endpoint keeps failing, then it is disabled with a reason, its deliveries wait, and re-enabled they arrive',
  async (t) => {
    const endpointId = await register('/broken', ['withdraw.processing', 'withdraw.success', 'withdraw.failed']);
    receiver.setMode('/broken', 'fail');
    const orders = await placeOrders('hook-dave', 3);
    const expected = expectedTypes(await finalStatuses(orders));
    await eventually('the endpoint has failed twice', async () => {
      const { rows } = await balance.query<{ n: number }>('select consecutive_failures as n from webhook_endpoints where id = $1', [
        endpointId,
      ]);
      return rows[0]!.n >= 2;
    });
    // the clock seam is the data: it has been failing for longer than WEBHOOK_DISABLE_AFTER_HOURS
    await balance.query(`update webhook_endpoints set failing_since = now() - interval '73 hours' where id = $1`, [endpointId]);
    await eventually('the endpoint is disabled', async () => {
      const { rows } = await balance.query<{ status: string }>('select status from webhook_endpoints where id = $1', [endpointId]);
      return rows[0]!.status === 'disabled';
    });
    const listed = await call(system.url, 'GET', '/admin/webhook-endpoints', { token: system.adminToken });
    const endpoint = listed.body.data.items.find((e: any) => e.endpointId === endpointId);
    t.is(endpoint.status, 'disabled');
    t.regex(endpoint.statusReason, /failing since .* HTTP 500/);
    const pending = await call(system.url, 'GET', `/admin/webhook-deliveries?endpointId=${endpointId}&status=pending`, {
      token: system.adminToken,
    });
    t.true(pending.body.data.items.length >= orders.length, 'nothing is lost while it is disabled');
    // the heads of the orders' chains were tried (HTTP 500); the later ones wait behind them, untried
    const tried = pending.body.data.items.filter((d: { attempts: number }) => d.attempts > 0);
    t.true(tried.length >= orders.length, 'every order’s first delivery was tried');
    for (const delivery of tried) t.regex(delivery.lastError, /^HTTP 500/);
    receiver.setMode('/broken', 'ok');
    const enabled = await call(system.url, 'POST', `/admin/webhook-endpoints/${endpointId}/enable`, { token: system.adminToken });
    t.is(enabled.status, 200, enabled.text);
    await eventually('the re-enabled endpoint has every event', async () => hasAll(receiver.events('/broken'), expected), 30_000);
    checkOrdered(t, receiver.events('/broken'), expected);
    await unregister(endpointId);
  },
);

test.serial('when a delivery has failed past the retry horizon, then it is given up and listed, and an operator replays it', async (t) => {
  const endpointId = await register('/late', ['withdraw.processing']);
  receiver.setMode('/late', 'fail');
  const [orderId] = await placeOrders('hook-erin', 1);
  await eventually('the delivery was tried', async () => {
    const { rows } = await balance.query<{ attempts: number }>('select attempts from webhook_deliveries where endpoint_id = $1', [
      endpointId,
    ]);
    return (rows[0]?.attempts ?? 0) >= 1;
  });
  // its first attempt was longer ago than WEBHOOK_RETRY_HORIZON_HOURS: the next failure gives it up
  await balance.query(`update webhook_deliveries set first_attempt_at = now() - interval '73 hours' where endpoint_id = $1`, [endpointId]);
  await eventually('the delivery is given up', async () => {
    const { rows } = await balance.query<{ status: string }>('select status from webhook_deliveries where endpoint_id = $1', [endpointId]);
    return rows[0]?.status === 'failed';
  });
  const failed = await call(system.url, 'GET', `/admin/webhook-deliveries?endpointId=${endpointId}&status=failed`, {
    token: system.adminToken,
  });
  t.is(failed.body.data.items.length, 1);
  const delivery = failed.body.data.items[0];
  t.like(delivery, { type: 'withdraw.processing', withdrawOrderId: orderId, status: 'failed', lastStatusCode: 500 });
  receiver.setMode('/late', 'ok');
  const retried = await call(system.url, 'POST', `/admin/webhook-deliveries/${delivery.deliveryId}/retry`, { token: system.adminToken });
  t.is(retried.status, 200, retried.text);
  await eventually('the replayed event arrived', async () => receiver.events('/late').some((e) => e.eventId === delivery.eventId));
  const after = await call(system.url, 'GET', `/admin/webhook-deliveries?withdrawOrderId=${orderId}`, { token: system.adminToken });
  t.is(after.body.data.items.find((d: any) => d.deliveryId === delivery.deliveryId).status, 'delivered');
  // a replay of a delivered event sends the same event again: receivers de-duplicate by eventId
  await call(system.url, 'POST', `/admin/webhook-deliveries/${delivery.deliveryId}/retry`, { token: system.adminToken });
  await eventually(
    'the event arrived twice',
    async () => receiver.events('/late').filter((e) => e.eventId === delivery.eventId).length === 2,
  );
  const [one, two] = receiver.events('/late').filter((e) => e.eventId === delivery.eventId);
  t.deepEqual(one!.data, two!.data);
  t.is(one!.createdAt, two!.createdAt);
  await unregister(endpointId);
});
