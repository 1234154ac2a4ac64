// 100 withdrawals through the whole asynchronous path (relays, ledger, gateway, simulator,
// callbacks) with no faults: everything succeeds once, and both databases agree.
import test from 'ava';
import { formatMinor } from '../app/money/money.ts';
import { allInvariants } from '../reconcile/invariants.ts';
import {
  accountMinor,
  historyOf,
  journalKindsOf,
  placeWithdrawal,
  randomMinor,
  seededRandom,
  type PlacedOrder,
} from './helpers/asyncChecks.ts';
import { waitForQuiescence } from './helpers/quiescence.ts';
import { startTestSystem, type TestSystem } from './helpers/system.ts';

let system: TestSystem;
test.before(async () => {
  system = await startTestSystem({ worker: true });
});
test.after.always(async () => {
  await system?.stop();
});

const SEED = 20_240_611;
const ORDERS = 100;

test('when 100 withdrawals of random amounts run on several accounts, then all succeed once and every number agrees', async (t) => {
  const { balance, ledger } = system.db.databases;
  const random = seededRandom(SEED);
  // 4 users, one with two wallets: 5 accounts, each funded with a random amount
  const users = ['hp-ann', 'hp-ben', 'hp-cat', 'hp-dan', 'hp-ann'];
  const accounts: Array<{ userId: string; accountId: string; creditMinor: bigint }> = [];
  for (const userId of users) {
    const creditMinor = randomMinor(random, 500_000n, 2_000_000n);
    accounts.push({ userId, accountId: await system.fundedAccount(userId, formatMinor(creditMinor, 'USD')), creditMinor });
  }
  // every account can cover the most it could be asked for (100 x 49.99 < 5000.00)
  const placing: Array<Promise<PlacedOrder>> = [];
  for (let i = 0; i < ORDERS; i += 1) {
    const account = accounts[Math.floor(random() * accounts.length)]!;
    const amountMinor = randomMinor(random, 1n, 4_999n);
    placing.push(placeWithdrawal(system, { userId: account.userId, accountId: account.accountId, amountMinor }));
  }
  const orders = await Promise.all(placing);
  t.is(new Set(orders.map((o) => o.transactionId)).size, ORDERS);

  const statuses = await system.waitForOrders(
    orders.map((o) => o.orderId),
    ['success', 'failed', 'manual'],
    60_000,
  );
  await waitForQuiescence(balance, ledger, 60_000);
  const notSuccess = orders.filter((o) => statuses.get(o.orderId) !== 'success');
  t.deepEqual(
    notSuccess.map((o) => `${o.orderId}: ${statuses.get(o.orderId)}`),
    [],
  );

  t.deepEqual(await allInvariants(balance, ledger), []);

  // per account: balance = credits - success, available = balance, reserved 0 (computed here with bigint)
  for (const account of accounts) {
    const spentMinor = orders.filter((o) => o.accountId === account.accountId).reduce((sum, o) => sum + o.amountMinor, 0n);
    const numbers = await accountMinor(balance, account.accountId);
    t.deepEqual(
      numbers,
      { balance: account.creditMinor - spentMinor, available: account.creditMinor - spentMinor, reserved: 0n },
      `account ${account.accountId}`,
    );
  }

  // the provider executed each reference exactly once, and nothing else
  const stats = system.sim!.stats();
  t.deepEqual(stats.executed, Object.fromEntries(orders.map((o) => [o.transactionId, 1])));

  // each order: init -> processing -> success (processing by the submit job, or by an early callback)
  const journals = await journalKindsOf(
    ledger,
    orders.map((o) => o.transactionId),
  );
  for (const order of orders) {
    const history = await historyOf(balance, order.orderId);
    t.deepEqual(
      history.map((h) => [h.fromStatus, h.toStatus]),
      [
        [null, 'init'],
        ['init', 'processing'],
        ['processing', 'success'],
      ],
      `history of ${order.orderId}`,
    );
    const processingBy = history[1]?.actor;
    t.true(processingBy === 'job' || processingBy === 'provider', `processing by ${processingBy}`);
    t.is(history[2]?.actor, 'provider');
    t.deepEqual(journals.get(order.transactionId), ['hold', 'settle'], `journals of ${order.transactionId}`);
  }
});
