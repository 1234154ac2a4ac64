// Provider callbacks as they really arrive: twice, contradicting a final state, for references we
// never sent, or not at all. The inbox stores each event once; a callback never moves money
// against a final state (it raises a reconciliation break instead). Knobs are shared: serial.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import test from 'ava';
import { sql } from 'slonik';
import { z } from 'zod';
import { allInvariants } from '../reconcile/invariants.ts';
import {
  accountMinor,
  countRows,
  eventually,
  historyOf,
  journalKinds,
  journalKindsOf,
  ordersById,
  placeMany,
  sendCallback,
  type PlacedOrder,
} from './helpers/asyncChecks.ts';
import { drainerPasses, waitForQuiescence } from './helpers/quiescence.ts';
import { startTestSystem, type TestSystem } from './helpers/system.ts';

type NotifyReply = { status: number; msg: string; eventId: string | null };

/** Records every reply of POST /withdraw/notify, whoever sent the request (the simulator included). */
function tapNotifyReplies(server: Server): NotifyReply[] {
  const replies: NotifyReply[] = [];
  server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
    if (!req.url?.startsWith('/withdraw/notify')) return;
    const chunks: Buffer[] = [];
    const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
    res.end = ((...args: unknown[]) => {
      const [chunk] = args;
      if (typeof chunk === 'string' || Buffer.isBuffer(chunk)) chunks.push(Buffer.from(chunk));
      return end(...args);
    }) as typeof res.end;
    res.on('finish', () => {
      let body: { msg?: string; data?: { eventId?: string } | null } = {};
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof body;
      } catch {
        // not JSON: recorded with an empty msg
      }
      replies.push({ status: res.statusCode, msg: body.msg ?? '', eventId: body.data?.eventId ?? null });
    });
  });
  return replies;
}

let system: TestSystem;
let notifyReplies: NotifyReply[];
test.before(async () => {
  system = await startTestSystem({ worker: true });
  notifyReplies = tapNotifyReplies(system.web.server);
});
test.after.always(async () => {
  await system?.stop();
});

const NO_FAULTS = { duplicateCallbackRate: 0, reverseAfterPaidRate: 0, dropCallbackRate: 0, rejectRate: 0 } as const;

const InboxRow = z.object({ eventId: z.string(), reference: z.string(), status: z.string(), outcome: z.string().nullable() });

async function inboxOf(references: readonly string[]) {
  return system.db.databases.balance.any(sql.type(InboxRow)`
    select event_id as "eventId", reference, status, outcome from gateway_inbox
     where reference = any(${sql.array([...references], 'text')}) order by id`);
}

const BreakRow = z.object({
  category: z.string(),
  subject: z.string(),
  orderId: z.string().nullable(),
  transactionId: z.string().nullable(),
  expected: z.string().nullable(),
  actual: z.string().nullable(),
  seenCount: z.number(),
  details: z.record(z.unknown()),
});

async function openBreaks(category: string, subject: string) {
  return system.db.databases.balance.any(sql.type(BreakRow)`
    select category, subject, order_id as "orderId", transaction_id as "transactionId", expected, actual,
           seen_count as "seenCount", details
      from reconciliation_breaks where category = ${category} and subject = ${subject} and resolved_at is null`);
}

async function processedInbox(eventId: string): Promise<string | null> {
  await eventually(
    `inbox event ${eventId} to be processed`,
    async () =>
      (await system.db.databases.balance.maybeOneFirst(sql.type(z.object({ outcome: z.string().nullable() }))`
    select outcome from gateway_inbox where event_id = ${eventId} and processed_at is not null`)) != null,
  );
  return system.db.databases.balance.oneFirst(sql.type(z.object({ outcome: z.string().nullable() }))`
    select outcome from gateway_inbox where event_id = ${eventId}`);
}

async function settle(orders: readonly PlacedOrder[], statuses: readonly string[] = ['success', 'failed', 'manual']) {
  const { balance, ledger } = system.db.databases;
  const result = await system.waitForOrders(
    orders.map((o) => o.orderId),
    statuses,
    30_000,
  );
  await waitForQuiescence(balance, ledger);
  return result;
}

/** Money, journals and history: everything a callback could wrongly move. */
async function moneySnapshot() {
  const { balance, ledger } = system.db.databases;
  const totals = await balance.one(sql.type(z.object({ balance: z.bigint(), available: z.bigint(), reserved: z.bigint() }))`
    select coalesce(sum(balance_minor), 0)::bigint as balance, coalesce(sum(available_minor), 0)::bigint as available,
           coalesce(sum(reserved_minor), 0)::bigint as reserved from accounts`);
  return {
    totals,
    outbox: await countRows(balance, 'outbox'),
    history: await countRows(balance, 'withdraw_status_history'),
    journals: await countRows(ledger, 'journal_transactions'),
    entries: await countRows(ledger, 'entries'),
  };
}

test.serial(
  'when every callback is delivered twice, then each order succeeds once, the inbox holds one row per event, and the repeat is answered duplicate',
  async (t) => {
    const { balance, ledger } = system.db.databases;
    system.sim!.setKnobs({ ...NO_FAULTS, duplicateCallbackRate: 1 });
    const before = system.sim!.stats();
    const { accountId, orders } = await placeMany(system, { userId: 'cb-dup', count: 10, amountMinor: 1_500n, fundMinor: 20_000n });
    const statuses = await settle(orders);
    t.deepEqual(
      orders.map((o) => statuses.get(o.orderId)),
      orders.map(() => 'success'),
    );
    // both deliveries of each event got a 2xx
    await eventually(
      'both deliveries of every callback to be answered 2xx',
      async () => system.sim!.stats().callbacksSent - before.callbacksSent === 2 * orders.length,
    );
    t.is(system.sim!.stats().callbacksDuplicated - before.callbacksDuplicated, orders.length);
    await waitForQuiescence(balance, ledger);

    const inbox = await inboxOf(orders.map((o) => o.transactionId));
    t.is(inbox.length, orders.length, 'one inbox row per event');
    t.is(new Set(inbox.map((row) => row.eventId)).size, orders.length);
    t.true(inbox.every((row) => row.status === 'paid' && row.outcome === 'applied'));
    for (const row of inbox) {
      const replies = notifyReplies.filter((reply) => reply.eventId === row.eventId);
      t.deepEqual(replies.map((r) => `${r.status} ${r.msg}`).sort(), ['200 duplicate', '200 stored'], `replies for ${row.eventId}`);
    }

    const journals = await journalKindsOf(
      ledger,
      orders.map((o) => o.transactionId),
    );
    for (const order of orders) {
      const history = await historyOf(balance, order.orderId);
      t.is(history.filter((h) => h.toStatus === 'success').length, 1);
      t.deepEqual(journals.get(order.transactionId), ['hold', 'settle']);
    }
    t.deepEqual(await accountMinor(balance, accountId), { balance: 5_000n, available: 5_000n, reserved: 0n });
    t.deepEqual(await allInvariants(balance, ledger), []);
  },
);

test.serial(
  'when the provider reports failed after paid, then the order keeps its first final state and a break is raised, no money moves back',
  async (t) => {
    const { balance, ledger } = system.db.databases;
    system.sim!.setKnobs({ ...NO_FAULTS, reverseAfterPaidRate: 1 });
    const { accountId, orders } = await placeMany(system, { userId: 'cb-rev', count: 8, amountMinor: 1_000n, fundMinor: 10_000n });
    await settle(orders);
    const references = orders.map((o) => o.transactionId);
    await eventually('the simulator to reverse each payout', async () => references.every((r) => system.sim!.stats().reversed.includes(r)));
    await eventually('both callbacks of each payout to be applied', async () => {
      const inbox = await inboxOf(references);
      return inbox.length === 2 * orders.length && inbox.every((row) => row.outcome !== null);
    });
    await waitForQuiescence(balance, ledger);

    const inbox = await inboxOf(references);
    const rows = await ordersById(
      balance,
      orders.map((o) => o.orderId),
    );
    const journals = await journalKindsOf(ledger, references);
    let successMinor = 0n;
    let paidFirst = 0;
    for (const order of orders) {
      const mine = inbox.filter((row) => row.reference === order.transactionId);
      // the first callback applied decides; the other contradicts a final state
      const applied = mine.filter((row) => row.outcome === 'applied');
      t.is(applied.length, 1);
      t.deepEqual(mine.map((row) => row.outcome).sort(), ['applied', 'contradiction']);
      const final = applied[0]!.status === 'paid' ? 'success' : 'failed';
      t.is(rows.get(order.orderId)?.status, final);
      const history = await historyOf(balance, order.orderId);
      t.is(history.filter((h) => h.toStatus === 'success' || h.toStatus === 'failed').length, 1, 'one final transition');
      t.deepEqual(journals.get(order.transactionId), ['hold', final === 'success' ? 'settle' : 'reverse']);
      const breaks = await openBreaks('callback_contradicts_final', `order:${order.orderId}`);
      t.is(breaks.length, 1);
      t.like(breaks[0], { orderId: order.orderId, transactionId: order.transactionId, expected: final });
      if (final === 'success') {
        successMinor += order.amountMinor;
        paidFirst += 1;
      }
    }
    t.log(`${paidFirst} of ${orders.length} applied paid first, the others failed first`);
    t.deepEqual(await accountMinor(balance, accountId), {
      balance: 10_000n - successMinor,
      available: 10_000n - successMinor,
      reserved: 0n,
    });
    t.deepEqual(await allInvariants(balance, ledger), []);
  },
);

test.serial(
  'when we receive a signed failed callback for a successful order, then it stays success, nothing moves, a break is raised and withdraw.reversed announced (once per order)',
  async (t) => {
    const { balance, ledger } = system.db.databases;
    system.sim!.setKnobs({ ...NO_FAULTS });
    const { accountId, orders } = await placeMany(system, { userId: 'cb-contra', count: 1, amountMinor: 4_200n });
    const order = orders[0]!;
    t.is((await settle(orders)).get(order.orderId), 'success');
    const account = await accountMinor(balance, accountId);
    const snapshot = await moneySnapshot();
    const history = await historyOf(balance, order.orderId);

    for (const round of [1, 2]) {
      const eventId = `contra-${round}-${randomUUID()}`;
      const reply = await sendCallback(system.url, {
        eventId,
        reference: order.transactionId,
        status: 'failed',
        failureCode: 'payout_reversed',
      });
      t.is(reply.status, 200, reply.text);
      t.is(reply.body.msg, 'stored');
      t.is(await processedInbox(eventId), 'contradiction');
      const breaks = await openBreaks('callback_contradicts_final', `order:${order.orderId}`);
      t.is(breaks.length, 1, 'one open break per order, re-detection bumps it');
      t.like(breaks[0], { expected: 'success', actual: 'provider reports failed', seenCount: round, transactionId: order.transactionId });
      t.like(breaks[0]!.details, { eventId, status: 'failed', failureCode: 'payout_reversed' });
    }
    await waitForQuiescence(balance, ledger);
    t.is((await ordersById(balance, [order.orderId])).get(order.orderId)?.status, 'success');
    t.deepEqual(await accountMinor(balance, accountId), account);
    // the only row written is the announcement of the reversal (withdraw.reversed), once
    t.deepEqual(await moneySnapshot(), { ...snapshot, outbox: snapshot.outbox + 1 });
    const reversed = await balance.anyFirst(sql.type(z.object({ topic: z.string() }))`
      select topic from outbox where transaction_id = ${order.transactionId} and topic = 'withdraw.reversed'`);
    t.deepEqual(reversed, ['withdraw.reversed']);
    t.deepEqual(await historyOf(balance, order.orderId), history);
    t.deepEqual(await journalKinds(ledger, order.transactionId), ['hold', 'settle']);
    t.deepEqual(await allInvariants(balance, ledger), []);
  },
);

test.serial(
  'when we receive a signed paid callback for a failed order, then it stays failed, the money stays released, and a break is raised',
  async (t) => {
    const { balance, ledger } = system.db.databases;
    system.sim!.setKnobs({ ...NO_FAULTS, rejectRate: 1 });
    const { accountId, orders } = await placeMany(system, { userId: 'cb-contra-failed', count: 1, amountMinor: 900n });
    const order = orders[0]!;
    t.is((await settle(orders)).get(order.orderId), 'failed');
    system.sim!.setKnobs({ ...NO_FAULTS });
    const snapshot = await moneySnapshot();
    const eventId = `late-paid-${randomUUID()}`;
    const reply = await sendCallback(system.url, { eventId, reference: order.transactionId, status: 'paid' });
    t.is(reply.status, 200, reply.text);
    t.is(await processedInbox(eventId), 'contradiction');
    const breaks = await openBreaks('callback_contradicts_final', `order:${order.orderId}`);
    t.like(breaks[0], { expected: 'failed', actual: 'provider reports paid' });
    await waitForQuiescence(balance, ledger);
    t.is((await ordersById(balance, [order.orderId])).get(order.orderId)?.status, 'failed');
    t.deepEqual(await accountMinor(balance, accountId), { balance: 900n, available: 900n, reserved: 0n });
    t.deepEqual(await moneySnapshot(), snapshot);
    t.deepEqual(await journalKinds(ledger, order.transactionId), ['hold', 'reverse']);
  },
);

test.serial(
  'when a signed callback names a reference we never sent, then 200, it is stored, and a break is raised without moving money',
  async (t) => {
    const { balance, ledger } = system.db.databases;
    await waitForQuiescence(balance, ledger);
    const snapshot = await moneySnapshot();
    const unknownUuid = randomUUID();
    for (const reference of [unknownUuid, 'not-a-uuid:ref/42']) {
      for (const status of ['paid', 'failed'] as const) {
        const eventId = `unknown-${status}-${randomUUID()}`;
        const reply = await sendCallback(system.url, { eventId, reference, status });
        t.is(reply.status, 200, reply.text);
        t.is(reply.body.msg, 'stored');
        t.is(await processedInbox(eventId), 'unknown_reference');
        const breaks = await openBreaks('callback_unknown_reference', `event:${eventId}`);
        t.is(breaks.length, 1);
        t.like(breaks[0], { orderId: null, transactionId: reference === unknownUuid ? unknownUuid : null });
        t.like(breaks[0]!.details, { eventId, status });
      }
    }
    const stored = await inboxOf([unknownUuid, 'not-a-uuid:ref/42']);
    t.is(stored.length, 4);
    await waitForQuiescence(balance, ledger);
    t.deepEqual(await moneySnapshot(), snapshot);
    t.deepEqual(await allInvariants(balance, ledger), []);
  },
);

// Only the provider status query of recovery__stale_processing would find these outcomes, and it
// looks at orders processing for longer than PROCESSING_STALE_MS (5 minutes by default).
test.serial(
  'when every callback is dropped, then accepted orders stay processing with their money reserved, and the invariants hold',
  async (t) => {
    const { balance, ledger } = system.db.databases;
    system.sim!.setKnobs({ ...NO_FAULTS, dropCallbackRate: 1 });
    const before = system.sim!.stats();
    const { accountId, orders } = await placeMany(system, { userId: 'cb-drop', count: 6, amountMinor: 1_100n, fundMinor: 10_000n });
    const statuses = await settle(orders, ['processing', 'success', 'failed', 'manual']);
    t.deepEqual(
      orders.map((o) => statuses.get(o.orderId)),
      orders.map(() => 'processing'),
    );
    await eventually(
      'the simulator to drop every callback',
      async () => system.sim!.stats().callbacksDropped - before.callbacksDropped === orders.length,
    );
    // nothing else comes: every relay and the inbox drainer ran twice more (the poll wakes them)
    await drainerPasses(system.worker!, 2);
    await waitForQuiescence(balance, ledger);
    const rows = await ordersById(
      balance,
      orders.map((o) => o.orderId),
    );
    t.deepEqual(
      orders.map((o) => rows.get(o.orderId)?.status),
      orders.map(() => 'processing'),
    );
    t.deepEqual(await accountMinor(balance, accountId), { balance: 10_000n, available: 10_000n - 6_600n, reserved: 6_600n });
    const stats = system.sim!.stats();
    for (const order of orders) t.is(stats.executed[order.transactionId], 1);
    t.is((await inboxOf(orders.map((o) => o.transactionId))).length, 0);
    const journals = await journalKindsOf(
      ledger,
      orders.map((o) => o.transactionId),
    );
    t.deepEqual(
      orders.map((o) => journals.get(o.transactionId)),
      orders.map(() => ['hold']),
    );
    // I1-I4, and I5 too: the ledger holds the same amount in transit as the Balance DB reserves
    t.deepEqual(await allInvariants(balance, ledger), []);
  },
);
