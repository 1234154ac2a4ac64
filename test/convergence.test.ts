// Issue 4's "done when": 200 withdrawals while the provider drops a fifth of its callbacks (and
// fails some payouts after accepting them, and sends some callbacks twice and late). Recovery alone
// (resumeStaleInit, queryStaleProcessing, called here in a loop whenever the system has done what
// it can by itself, on a clock ahead of the real one, instead of once a minute) brings every order
// to success or failed, with no human action; afterwards the
// invariants hold, a full reconciliation finds no breaks and the ledger nets to zero per currency.
import test from 'ava';
import { sql } from 'slonik';
import { z } from 'zod';
import type { Config } from '../app/config.ts';
import { createPspHttpAdapter } from '../app/gateway/pspHttpAdapter.ts';
import type { PspAdapter } from '../app/gateway/pspAdapter.ts';
import { createLogger } from '../app/logger.ts';
import { allInvariants } from '../reconcile/invariants.ts';
import { runReconciliation } from '../reconcile/reconcileRun.ts';
import { queryStaleProcessing, resumeStaleInit } from '../reconcile/recovery.ts';
import { runReport } from '../reconcile/reports.ts';
import { journalKindsOf, placeWithdrawal, seededRandom, randomMinor, type PlacedOrder } from './helpers/asyncChecks.ts';
import { waitForQuiescence } from './helpers/quiescence.ts';
import { recoveryConfig, testClock, trialBalance } from './helpers/recoveryHarness.ts';
import { startTestSystem, type TestSystem } from './helpers/system.ts';

const ORDERS = 200;
const USERS = 20;
const CONVERGE_ROUNDS_MAX = 120;

let system: TestSystem;
let config: Config;
let psp: PspAdapter;
const logger = createLogger({ level: 'silent', name: 'test-convergence' });

test.before(async () => {
  system = await startTestSystem({
    worker: true,
    knobs: { dropCallbackRate: 0.2, failAfterAcceptRate: 0.15, duplicateCallbackRate: 0.1, lateCallbackMs: 100 },
    seed: 4,
  });
  config = recoveryConfig(system, { PROCESSING_QUERY_INTERVAL_MS: '200', PROCESSING_QUERY_ATTEMPTS_MAX: '20' });
  psp = createPspHttpAdapter({ baseUrl: system.simUrl!, ...config.gateway });
});
test.after.always(async () => {
  await psp?.close();
  await system?.stop();
});

const StatusCount = z.object({ status: z.string(), n: z.number() });

test('when a fifth of the callbacks are dropped, then recovery alone brings all 200 orders to success or failed, and the books reconcile', async (t) => {
  const { balance, ledger } = system.db.databases;
  const random = seededRandom(20_240_404);
  const accounts: string[] = [];
  for (let u = 0; u < USERS; u += 1) accounts.push(await system.fundedAccount(`conv-${u}`, '1000.00'));
  const placed: PlacedOrder[] = [];
  const specs = Array.from({ length: ORDERS }, (_, i) => ({ user: i % USERS, amountMinor: randomMinor(random, 100n, 4_000n) }));
  // placed 20 at a time: one request per user in flight at once
  for (let i = 0; i < specs.length; i += USERS) {
    placed.push(
      ...(await Promise.all(
        specs
          .slice(i, i + USERS)
          .map((spec) =>
            placeWithdrawal(system, { userId: `conv-${spec.user}`, accountId: accounts[spec.user]!, amountMinor: spec.amountMinor }),
          ),
      )),
    );
  }
  const orderIds = placed.map((o) => o.orderId);

  // the recovery loop: what the crons do once a minute, here each time the system is quiet, at a
  // time past every threshold (the clock moves a query interval on each round)
  const totals = { resumed: 0, queried: 0, answered: 0, pending: 0, manual: 0, unknown: 0 };
  const clock = testClock();
  let counts = new Map<string, number>();
  for (let round = 0; round < CONVERGE_ROUNDS_MAX; round += 1) {
    await waitForQuiescence(balance, ledger, 60_000);
    const now = clock.advance(config.recovery.processingQueryIntervalMs + 1);
    totals.resumed += await resumeStaleInit({ databases: system.db.databases, config, logger, now });
    const summary = await queryStaleProcessing({
      databases: system.db.databases,
      config,
      psp,
      logger,
      onApplied: () => system.worker?.drainers.gatewayInbox.wake(),
      now,
    });
    for (const key of ['queried', 'answered', 'pending', 'manual', 'unknown'] as const) totals[key] += summary[key];
    counts = new Map(
      (
        await balance.any(sql.type(StatusCount)`
      select status, count(*)::int as n from withdraw_orders where id = any(${sql.array(orderIds, 'uuid')}) group by status`)
      ).map((row) => [row.status, row.n]),
    );
    if ((counts.get('success') ?? 0) + (counts.get('failed') ?? 0) === ORDERS) break;
  }
  t.deepEqual(
    Object.fromEntries([...counts].filter(([status]) => status !== 'success' && status !== 'failed')),
    {},
    `every order final: ${JSON.stringify(Object.fromEntries(counts))}, recovery ${JSON.stringify(totals)}`,
  );
  t.is(totals.manual, 0, 'no order needed a human');
  t.log(`final: ${JSON.stringify(Object.fromEntries(counts))}; recovery: ${JSON.stringify(totals)}`);
  const stats = system.sim!.stats();
  t.true(stats.callbacksDropped > 0 && totals.answered > 0, `dropped ${stats.callbacksDropped}, recovered ${totals.answered}`);
  t.true((counts.get('failed') ?? 0) > 0 && (counts.get('success') ?? 0) > 0);

  await waitForQuiescence(balance, ledger, 60_000);
  t.deepEqual(await allInvariants(balance, ledger), []);
  // I7: one payout per reference, and money moved exactly for the orders that succeeded
  const statuses = await system.waitForOrders(orderIds, ['success', 'failed']);
  const journals = await journalKindsOf(
    ledger,
    placed.map((o) => o.transactionId),
  );
  for (const order of placed) {
    t.is(stats.executed[order.transactionId], 1, `I7: ${order.transactionId}`);
    t.deepEqual(journals.get(order.transactionId), ['hold', statuses.get(order.orderId) === 'success' ? 'settle' : 'reverse']);
  }
  // the status queries that found an outcome are on record (an order asked twice before its
  // answer was applied counts twice in the totals, once here)
  const answered = await balance.oneFirst(sql.type(z.object({ n: z.number() }))`
    select count(distinct transaction_id)::int as n from gateway_status_queries where result in ('paid', 'failed')`);
  t.true(answered > 0 && answered <= totals.answered, `${answered} orders answered, ${totals.answered} applied`);
  const byQuery = await balance.oneFirst(sql.type(z.object({ n: z.number() }))`
    select count(*)::int as n from withdraw_status_history where actor_id like 'status-query:%' and to_status in ('success', 'failed')`);
  t.true(byQuery > 0 && byQuery <= answered, `${byQuery} orders finished by a status query`);

  const run = await runReconciliation({ databases: system.db.databases, psp, config, logger, mode: 'full' });
  t.deepEqual(run.findings, []);
  t.is(run.ordersChecked, ORDERS);
  t.is(run.providerChecked, ORDERS);

  // the trial balance nets to zero per currency: by SQL, and by `npm run report -- trial-balance`
  t.deepEqual([...(await trialBalance(ledger))], [['USD', 0n]]);
  const report = await runReport('trial-balance', {}, system.db.databases);
  const column = (name: string) => report.columns.indexOf(name);
  const totalsRows = report.rows.filter((row) => row[column('account_kind')] === 'total');
  t.deepEqual(
    totalsRows.map((row) => [row[column('currency')], row[column('net')]]),
    [['USD', '0.00']],
  );
});
