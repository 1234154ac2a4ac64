// Unknown outcomes: a 5xx (the simulator executes half of them before failing) or no answer at
// all (the client times out after GATEWAY_TIMEOUT_MS=400). They are retried with backoff under
// the same idempotency key, so the provider executes each payout at most once (I7); when the
// attempts are spent the order goes to manual and its money stays reserved.
import test from 'ava';
import { sql } from 'slonik';
import { z } from 'zod';
import { allInvariants } from '../reconcile/invariants.ts';
import {
  accountMinor,
  eventually,
  historyOf,
  journalKindsOf,
  ordersById,
  placeMany,
  submitAttempts,
  type PlacedOrder,
} from './helpers/asyncChecks.ts';
import { call } from './helpers/http.ts';
import { drainerPasses, waitForQuiescence } from './helpers/quiescence.ts';
import { startTestSystem, TEST_SECRETS, type TestSystem } from './helpers/system.ts';

const FINAL = ['success', 'failed', 'manual'];
const ATTEMPTS_MAX_SMALL = 2;

/** generous attempts: at a 0.5 fault rate, 30 unknowns in a row would take ~1e-9 luck */
let retrying: TestSystem;
/** two attempts only: orders whose outcome stays unknown end in manual */
let giving: TestSystem;

test.before(async () => {
  retrying = await startTestSystem({ worker: true, env: { GATEWAY_SUBMIT_ATTEMPTS_MAX: '30' } });
  giving = await startTestSystem({ worker: true, env: { GATEWAY_SUBMIT_ATTEMPTS_MAX: String(ATTEMPTS_MAX_SMALL) } });
});
test.after.always(async () => {
  await retrying?.stop();
  await giving?.stop();
});

/** Per order: only unknown attempts, then at most one accepted (none when an early callback won). */
async function checkRetriedToSuccess(t: import('ava').ExecutionContext, system: TestSystem, orders: readonly PlacedOrder[]) {
  const { balance, ledger } = system.db.databases;
  const statuses = await system.waitForOrders(
    orders.map((o) => o.orderId),
    FINAL,
    60_000,
  );
  await waitForQuiescence(balance, ledger, 60_000);
  t.deepEqual(
    orders.filter((o) => statuses.get(o.orderId) !== 'success').map((o) => statuses.get(o.orderId)),
    [],
  );
  t.deepEqual(await allInvariants(balance, ledger), []);
  const executed = system.sim!.stats().executed;
  const attempts = await submitAttempts(
    balance,
    orders.map((o) => o.transactionId),
  );
  const journals = await journalKindsOf(
    ledger,
    orders.map((o) => o.transactionId),
  );
  for (const order of orders) {
    t.is(executed[order.transactionId], 1, `I7: ${order.transactionId} executed once`);
    const results = attempts.filter((a) => a.transactionId === order.transactionId).map((a) => a.result);
    const accepted = results.filter((r) => r === 'accepted').length;
    t.true(
      accepted <= 1 && results.every((r, i) => r === 'unknown' || (r === 'accepted' && i === results.length - 1)),
      `attempts of ${order.transactionId}: ${results.join(',')}`,
    );
    t.deepEqual(journals.get(order.transactionId), ['hold', 'settle']);
    const history = await historyOf(balance, order.orderId);
    t.deepEqual(
      history.map((h) => h.toStatus),
      ['init', 'processing', 'success'],
    );
  }
  return attempts;
}

test.serial('when half the submissions get a 5xx, then they are retried until accepted, each payout executed exactly once', async (t) => {
  const system = retrying;
  system.sim!.setKnobs({ errorRate: 0.5, hangRate: 0 });
  const before = system.sim!.stats();
  const { orders } = await placeMany(system, { userId: 'unk-err', count: 30, amountMinor: 777n });
  const attempts = await checkRetriedToSuccess(t, system, orders);
  const after = system.sim!.stats();
  const errors = after.errors - before.errors;
  t.true(errors > 0, 'the simulator answered some 5xx');
  // every 5xx the simulator gave is on record as an unknown attempt with its status
  const unknown500 = attempts.filter((a) => a.result === 'unknown' && a.httpStatus === 500);
  t.is(unknown500.length, errors);
  t.true(unknown500.every((a) => a.detail.reason === 'HTTP 500'));
  // no payout executed for anything but these orders
  t.deepEqual(Object.keys(after.executed).sort(), orders.map((o) => o.transactionId).sort());
});

test.serial('when half the submissions hang, then the client times out, retries, and each payout is executed exactly once', async (t) => {
  const system = retrying;
  system.sim!.setKnobs({ errorRate: 0, hangRate: 0.5 });
  const before = system.sim!.stats();
  const { orders } = await placeMany(system, { userId: 'unk-hang', count: 30, amountMinor: 555n });
  const attempts = await checkRetriedToSuccess(t, system, orders);
  const hangs = system.sim!.stats().hangs - before.hangs;
  t.true(hangs > 0, 'the simulator left some requests unanswered');
  const timedOut = attempts.filter((a) => a.result === 'unknown' && a.httpStatus === null);
  // each hang is one timed-out attempt (a slow machine may time out an answered one too)
  t.true(timedOut.length >= hangs, `${timedOut.length} timed-out attempts for ${hangs} hangs`);
  t.true(
    timedOut.every((a) => typeof a.detail.reason === 'string' && /timeout|abort/i.test(a.detail.reason)),
    JSON.stringify(timedOut.map((a) => a.detail.reason)),
  );
});

test.serial(
  'when every submission gets a 5xx and the attempts run out, then orders end manual with their money reserved, or success if the provider did pay',
  async (t) => {
    const system = giving;
    const { balance, ledger } = system.db.databases;
    system.sim!.setKnobs({ errorRate: 1, hangRate: 0 });
    const { accountId, orders } = await placeMany(system, { userId: 'unk-manual', count: 24, amountMinor: 1_000n, fundMinor: 100_000n });
    await system.waitForOrders(
      orders.map((o) => o.orderId),
      ['success', 'manual'],
      60_000,
    );
    await waitForQuiescence(balance, ledger, 60_000);
    // a payout executed on the last attempt reports paid by callback: manual -> success; wait for those
    await eventually(
      'success exactly for the payouts the provider executed',
      async () => {
        const executed = system.sim!.stats().executed;
        const rows = await ordersById(
          balance,
          orders.map((o) => o.orderId),
        );
        return orders.every((o) => (rows.get(o.orderId)?.status === 'success') === (executed[o.transactionId] === 1));
      },
      20_000,
    );
    await waitForQuiescence(balance, ledger);

    const rows = await ordersById(
      balance,
      orders.map((o) => o.orderId),
    );
    const manual = orders.filter((o) => rows.get(o.orderId)?.status === 'manual');
    const success = orders.filter((o) => rows.get(o.orderId)?.status === 'success');
    t.is(manual.length + success.length, orders.length);
    t.true(manual.length > 0, 'some orders never got executed');
    const executed = system.sim!.stats().executed;
    for (const order of success) t.is(executed[order.transactionId], 1);
    for (const order of manual) t.is(executed[order.transactionId], undefined);

    // never released while unknown: the manual orders' money is still reserved, in both databases
    const manualMinor = 1_000n * BigInt(manual.length);
    const successMinor = 1_000n * BigInt(success.length);
    t.deepEqual(await accountMinor(balance, accountId), {
      balance: 100_000n - successMinor,
      available: 100_000n - successMinor - manualMinor,
      reserved: manualMinor,
    });
    t.deepEqual(await allInvariants(balance, ledger), []);

    const attempts = await submitAttempts(
      balance,
      manual.map((o) => o.transactionId),
    );
    const journals = await journalKindsOf(
      ledger,
      manual.map((o) => o.transactionId),
    );
    for (const order of manual) {
      const mine = attempts.filter((a) => a.transactionId === order.transactionId);
      t.deepEqual(
        mine.map((a) => [a.result, a.httpStatus]),
        Array(ATTEMPTS_MAX_SMALL).fill(['unknown', 500]),
      );
      const history = await historyOf(balance, order.orderId);
      t.deepEqual(
        history.map((h) => [h.fromStatus, h.toStatus, h.actor]),
        [
          [null, 'init', 'api'],
          ['init', 'manual', 'job'],
        ],
      );
      t.is(history[1]!.reason, `outcome unknown after ${ATTEMPTS_MAX_SMALL} attempts`);
      t.like(history[1]!.evidence, { result: 'unknown', httpStatus: 500, unknownAttempts: ATTEMPTS_MAX_SMALL });
      t.deepEqual(journals.get(order.transactionId), ['hold']);
    }
    for (const order of success) {
      const history = await historyOf(balance, order.orderId);
      t.is(history.at(-1)!.toStatus, 'success');
      t.is(history.at(-1)!.actor, 'provider');
    }
  },
);

test.serial('when the faults stop, then nothing moves a manual order by itself: no retry, no release, no payout', async (t) => {
  const system = giving;
  const { balance, ledger } = system.db.databases;
  system.sim!.setKnobs({ errorRate: 0, hangRate: 0 });
  const manual = await balance.any(sql.type(
    z.object({
      orderId: z.string(),
      transactionId: z.string(),
      accountId: z.string(),
      userId: z.string(),
      toAccountId: z.string(),
      amountMinor: z.bigint(),
    }),
  )`
    select id as "orderId", transaction_id as "transactionId", account_id as "accountId", user_id as "userId",
           to_account_id as "toAccountId", amount_minor as "amountMinor"
      from withdraw_orders where status = 'manual' order by id`);
  t.true(manual.length > 0, 'the previous test left manual orders');
  const accountBefore = await accountMinor(balance, manual[0]!.accountId);
  const attemptsBefore = (
    await submitAttempts(
      balance,
      manual.map((o) => o.transactionId),
    )
  ).length;
  const historyBefore = await balance.oneFirst(sql.type(z.object({ n: z.number() }))`
    select count(*)::int as n from withdraw_status_history`);

  // everything that could nudge them: the sweep, a resubmission through the internal API, a stray job
  const first = manual[0]!;
  const resubmit = await call(system.url, 'POST', '/withdraw/submit', {
    token: TEST_SECRETS.INTERNAL_TOKEN,
    body: {
      fromAccountId: first.accountId,
      toAccountId: first.toAccountId,
      amount: '10.00',
      userId: first.userId,
      transactionId: first.transactionId,
    },
  });
  t.is(resubmit.status, 202, resubmit.text);
  t.is(resubmit.body.data.status, 'manual');
  await balance.query(sql.unsafe`
    select graphile_worker.add_job('gateway__submit', json_build_object('transactionId', ${first.transactionId}::uuid, 'source', 'test'))`);
  await balance.query(sql.unsafe`select graphile_worker.add_job('outbox__sweep', '{}'::json)`);
  await system.worker!.drainers.balanceOutbox.drain();
  await system.worker!.drainers.ledgerOutbox.drain();
  await system.worker!.drainers.gatewayInbox.drain();
  await waitForQuiescence(balance, ledger);
  // several poll intervals later (every relay and the inbox drainer ran twice more), still quiet
  await drainerPasses(system.worker!, 2);
  await waitForQuiescence(balance, ledger);

  const rows = await ordersById(
    balance,
    manual.map((o) => o.orderId),
  );
  t.deepEqual(
    [...rows.values()].map((r) => r.status),
    manual.map(() => 'manual'),
  );
  t.deepEqual(await accountMinor(balance, first.accountId), accountBefore);
  t.is(
    (
      await submitAttempts(
        balance,
        manual.map((o) => o.transactionId),
      )
    ).length,
    attemptsBefore,
    'no new call to the provider',
  );
  t.is(
    await balance.oneFirst(sql.type(z.object({ n: z.number() }))`select count(*)::int as n from withdraw_status_history`),
    historyBefore,
  );
  const executed = system.sim!.stats().executed;
  for (const order of manual) t.is(executed[order.transactionId], undefined);
  t.deepEqual(await allInvariants(balance, ledger), []);
});

test.serial(
  'when every submission hangs and the attempts run out, then every order ends manual with the timeouts as evidence',
  async (t) => {
    const system = giving;
    const { balance, ledger } = system.db.databases;
    system.sim!.setKnobs({ errorRate: 0, hangRate: 1 });
    const { accountId, orders } = await placeMany(system, { userId: 'unk-hang-manual', count: 8, amountMinor: 300n, fundMinor: 10_000n });
    const statuses = await system.waitForOrders(
      orders.map((o) => o.orderId),
      FINAL,
      30_000,
    );
    await waitForQuiescence(balance, ledger);
    t.deepEqual(
      orders.map((o) => statuses.get(o.orderId)),
      orders.map(() => 'manual'),
    );
    t.deepEqual(await accountMinor(balance, accountId), { balance: 10_000n, available: 10_000n - 2_400n, reserved: 2_400n });
    const attempts = await submitAttempts(
      balance,
      orders.map((o) => o.transactionId),
    );
    t.is(attempts.length, orders.length * ATTEMPTS_MAX_SMALL);
    t.true(attempts.every((a) => a.result === 'unknown' && a.httpStatus === null));
    for (const order of orders) {
      const history = await historyOf(balance, order.orderId);
      t.like(history.at(-1), { toStatus: 'manual', actor: 'job', evidence: { result: 'unknown', httpStatus: null } });
      t.is(system.sim!.stats().executed[order.transactionId], undefined);
    }
    t.deepEqual(await allInvariants(balance, ledger), []);
    system.sim!.setKnobs({ hangRate: 0 });
  },
);
