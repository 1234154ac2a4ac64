// Every fault at once, at moderate rates: each order must end in the state the provider's own
// record implies, each payout executed at most once, and both databases agree.
import test from 'ava';
import { allInvariants } from '../reconcile/invariants.ts';
import { accountMinor, eventually, journalKindsOf, ordersById, placeWithdrawal, type PlacedOrder } from './helpers/asyncChecks.ts';
import { waitForQuiescence } from './helpers/quiescence.ts';
import { startTestSystem, type TestSystem } from './helpers/system.ts';

let system: TestSystem;
test.before(async () => {
  system = await startTestSystem({
    worker: true,
    seed: 4242,
    env: { GATEWAY_SUBMIT_ATTEMPTS_MAX: '30' },
    knobs: {
      errorRate: 0.2,
      hangRate: 0.1,
      rejectRate: 0.15,
      failAfterAcceptRate: 0.15,
      duplicateCallbackRate: 0.3,
      lateCallbackMs: 300,
    },
  });
});
test.after.always(async () => {
  await system?.stop();
});

type ProviderRecord = { status: 'pending' | 'paid' | 'failed'; failureCode?: string } | null;

async function providerRecord(reference: string): Promise<ProviderRecord> {
  const response = await fetch(`${system.simUrl}/payouts/${reference}`);
  if (response.status === 404) return null;
  return (await response.json()) as ProviderRecord;
}

test('when every fault happens at once, then each order ends as the provider recorded it, and the money and ledger agree', async (t) => {
  const { balance, ledger } = system.db.databases;
  const accounts: Array<{ userId: string; accountId: string }> = [];
  for (let i = 0; i < 4; i += 1) {
    const userId = `mix-${i}`;
    accounts.push({ userId, accountId: await system.fundedAccount(userId, '1000.00') });
  }
  const orders: PlacedOrder[] = await Promise.all(
    Array.from({ length: 80 }, (_, i) => {
      const account = accounts[i % accounts.length]!;
      return placeWithdrawal(system, { userId: account.userId, accountId: account.accountId, amountMinor: BigInt(100 + i) });
    }),
  );
  await system.waitForOrders(
    orders.map((o) => o.orderId),
    ['success', 'failed', 'manual'],
    45_000,
  );
  await waitForQuiescence(balance, ledger, 30_000);
  // late callbacks (up to lateCallbackMs) may still turn a payout the provider settled late
  await eventually(
    'every order to agree with the provider (late callbacks applied)',
    async () => {
      const rows = await ordersById(
        balance,
        orders.map((o) => o.orderId),
      );
      const records = await Promise.all(orders.map((o) => providerRecord(o.transactionId)));
      return orders.every((o, i) => {
        const record = records[i];
        const status = rows.get(o.orderId)?.status;
        return record?.status === 'paid' ? status === 'success' : record?.status === 'failed' ? status === 'failed' : false;
      });
    },
    20_000,
    200,
  );
  await waitForQuiescence(balance, ledger);

  const rows = await ordersById(
    balance,
    orders.map((o) => o.orderId),
  );
  const executed = system.sim!.stats().executed;
  const journals = await journalKindsOf(
    ledger,
    orders.map((o) => o.transactionId),
  );
  const tally = { success: 0, rejected: 0, failedAfterAccept: 0 };
  for (const order of orders) {
    const record = await providerRecord(order.transactionId);
    const row = rows.get(order.orderId)!;
    t.true(executed[order.transactionId] === undefined || executed[order.transactionId] === 1, 'I7');
    if (record?.status === 'paid') {
      tally.success += 1;
      t.is(row.status, 'success', order.orderId);
      t.is(executed[order.transactionId], 1);
      t.deepEqual(journals.get(order.transactionId), ['hold', 'settle']);
    } else if (record?.status === 'failed' && record.failureCode === 'destination_account_closed') {
      tally.rejected += 1;
      t.like(row, { status: 'failed', failureReason: 'destination_account_closed' });
      t.is(executed[order.transactionId], undefined, 'a rejected payout never executes');
      t.deepEqual(journals.get(order.transactionId), ['hold', 'reverse']);
    } else {
      tally.failedAfterAccept += 1;
      t.like(record, { status: 'failed', failureCode: 'beneficiary_bank_rejected' });
      t.like(row, { status: 'failed', failureReason: 'beneficiary_bank_rejected' });
      t.is(executed[order.transactionId], 1);
      t.deepEqual(journals.get(order.transactionId), ['hold', 'reverse']);
    }
  }
  t.log(tally);
  t.true(tally.success > 0 && tally.rejected > 0 && tally.failedAfterAccept > 0, JSON.stringify(tally));

  for (const account of accounts) {
    const spent = orders
      .filter((o) => o.accountId === account.accountId && rows.get(o.orderId)?.status === 'success')
      .reduce((sum, o) => sum + o.amountMinor, 0n);
    t.deepEqual(await accountMinor(balance, account.accountId), { balance: 100_000n - spent, available: 100_000n - spent, reserved: 0n });
  }
  t.deepEqual(await allInvariants(balance, ledger), []);
});
