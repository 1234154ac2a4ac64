// Payouts the provider refuses: at once (a definitive 4xx) or after accepting (a failed callback).
// Either way the order ends failed with a reason, the reservation is released and the ledger
// reverses the hold. The knobs are the simulator's, shared by the file: tests run serially.
import test from 'ava';
import { allInvariants } from '../reconcile/invariants.ts';
import { accountMinor, historyOf, journalKindsOf, placeMany, submitAttempts } from './helpers/asyncChecks.ts';
import { call } from './helpers/http.ts';
import { waitForQuiescence } from './helpers/quiescence.ts';
import { startTestSystem, type TestSystem } from './helpers/system.ts';

let system: TestSystem;
test.before(async () => {
  system = await startTestSystem({ worker: true });
});
test.after.always(async () => {
  system?.sim?.setKnobs({ rejectRate: 0, failAfterAcceptRate: 0 });
  await system?.stop();
});

test.serial(
  'when the provider rejects every payout, then each order fails with its reason, the money is released and the hold reversed',
  async (t) => {
    const { balance, ledger } = system.db.databases;
    system.sim!.setKnobs({ rejectRate: 1, failAfterAcceptRate: 0 });
    const { accountId, orders } = await placeMany(system, { userId: 'rej-ann', count: 10, amountMinor: 1_234n, fundMinor: 100_000n });

    const statuses = await system.waitForOrders(
      orders.map((o) => o.orderId),
      ['success', 'failed', 'manual'],
      30_000,
    );
    await waitForQuiescence(balance, ledger);
    for (const order of orders) t.is(statuses.get(order.orderId), 'failed', order.orderId);

    // released: nothing left reserved, nothing taken
    t.deepEqual(await accountMinor(balance, accountId), { balance: 100_000n, available: 100_000n, reserved: 0n });
    t.deepEqual(await allInvariants(balance, ledger), []);

    const journals = await journalKindsOf(
      ledger,
      orders.map((o) => o.transactionId),
    );
    const attempts = await submitAttempts(
      balance,
      orders.map((o) => o.transactionId),
    );
    const executed = system.sim!.stats().executed;
    for (const order of orders) {
      const history = await historyOf(balance, order.orderId);
      t.deepEqual(
        history.map((h) => [h.fromStatus, h.toStatus, h.actor]),
        [
          [null, 'init', 'api'],
          ['init', 'failed', 'job'],
        ],
      );
      t.deepEqual(journals.get(order.transactionId), ['hold', 'reverse']);
      // one attempt, a definitive rejection with the provider's code; the provider executed nothing
      const mine = attempts.filter((a) => a.transactionId === order.transactionId);
      t.deepEqual(
        mine.map((a) => [a.result, a.httpStatus]),
        [['rejected', 422]],
      );
      t.is(executed[order.transactionId], undefined);
    }
    const reply = await system.withdraw(await system.userToken('rej-ann'), { toAccountId: 'x', amount: '1.00' });
    t.is(reply.status, 202, 'the released money is spendable again');
    const view = await fetchOrder(orders[0]!.orderId);
    t.is(view.status, 'failed');
    t.is(view.failureReason, 'destination_account_closed');
  },
);

test.serial(
  'when the provider accepts and later reports failure, then processing turns failed by the callback, released and reversed',
  async (t) => {
    const { balance, ledger } = system.db.databases;
    system.sim!.setKnobs({ rejectRate: 0, failAfterAcceptRate: 1 });
    const { accountId, orders } = await placeMany(system, { userId: 'rej-ben', count: 10, amountMinor: 2_500n, fundMinor: 30_000n });

    const statuses = await system.waitForOrders(
      orders.map((o) => o.orderId),
      ['success', 'failed', 'manual'],
      30_000,
    );
    await waitForQuiescence(balance, ledger);
    for (const order of orders) t.is(statuses.get(order.orderId), 'failed', order.orderId);

    t.deepEqual(await accountMinor(balance, accountId), { balance: 30_000n, available: 30_000n, reserved: 0n });
    t.deepEqual(await allInvariants(balance, ledger), []);

    const journals = await journalKindsOf(
      ledger,
      orders.map((o) => o.transactionId),
    );
    const executed = system.sim!.stats().executed;
    for (const order of orders) {
      const history = await historyOf(balance, order.orderId);
      // accepted (by the submit job, or implied by an early callback), then failed by the provider's callback
      t.deepEqual(
        history.map((h) => [h.fromStatus, h.toStatus]),
        [
          [null, 'init'],
          ['init', 'processing'],
          ['processing', 'failed'],
        ],
      );
      t.is(history[2]!.actor, 'provider');
      t.like(history[2]!.evidence, { status: 'failed', failureCode: 'beneficiary_bank_rejected' });
      t.deepEqual(journals.get(order.transactionId), ['hold', 'reverse']);
      t.is(executed[order.transactionId], 1, 'accepted, so executed once (and failed at the bank)');
    }
    const view = await fetchOrder(orders[0]!.orderId);
    t.is(view.status, 'failed');
    t.is(view.failureReason, 'beneficiary_bank_rejected');
  },
);

async function fetchOrder(orderId: string): Promise<{ status: string; failureReason?: string }> {
  const reply = await call(system.url, 'GET', `/withdraw/${orderId}`, { token: system.adminToken });
  if (reply.status !== 200) throw new Error(`GET order: ${reply.status} ${reply.text}`);
  return reply.body.data;
}
