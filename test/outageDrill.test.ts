// The outage drill: real processes (the web process, a real worker, the provider simulator as its
// own HTTP server, PostgreSQL) under a steady load of withdrawals while the provider is down —
// every answer a 5xx or a hang — for three minutes of simulated time, then back. Recovery and
// reconciliation run every 10 s of simulated time (the clock seam: they take the time they run
// at; the test moves it, it never waits for it). Afterwards every order ended `success` or
// `failed` by itself, or is `manual` with its evidence; after every recovery run no processing
// order is left waiting past its scheduled query; the books balance, each payout ran at most once,
// and a full reconciliation finds nothing.
import test from 'ava';
import { sql } from 'slonik';
import { z } from 'zod';
import type { Config } from '../app/config.ts';
import { createLogger } from '../app/logger.ts';
import { createPspHttpAdapter } from '../app/gateway/pspHttpAdapter.ts';
import type { PspAdapter } from '../app/gateway/pspAdapter.ts';
import { allInvariants } from '../reconcile/invariants.ts';
import { runReconciliation } from '../reconcile/reconcileRun.ts';
import { overdueCount, runRecovery } from '../reconcile/recovery.ts';
import { placeWithdrawal, type PlacedOrder } from './helpers/asyncChecks.ts';
import { waitForQuiescence } from './helpers/quiescence.ts';
import { recoveryConfig } from './helpers/recoveryHarness.ts';
import { startTestSystem, type TestSystem } from './helpers/system.ts';

const USERS = 10;
const STEP_MS = 10_000;
const OUTAGE_STEPS = 18; // three minutes
const CALM_STEPS_BEFORE = 3;
const CONVERGE_STEPS_MAX = 12; // two minutes after the provider is back
const ORDERS_PER_STEP = 4;
const FIRST_QUERY_MS = 15_000;

let system: TestSystem;
let config: Config;
let psp: PspAdapter;
const logger = createLogger({ level: 'silent', name: 'test-drill' });

test.before(async () => {
  system = await startTestSystem({
    worker: true,
    // a few attempts, a few seconds apart: unknown submissions go to manual within the outage
    env: { GATEWAY_SUBMIT_ATTEMPTS_MAX: '4', GATEWAY_RETRY_BASE_MS: '100', GATEWAY_RETRY_MAX_MS: '400' },
    knobs: { dropCallbackRate: 0.3, lateCallbackMs: 200 },
    seed: 11,
  });
  config = recoveryConfig(system, {
    INIT_STALE_MS: '30000',
    PROCESSING_STALE_MS: String(FIRST_QUERY_MS),
    PROCESSING_QUERY_INTERVAL_MS: '60000',
    MANUAL_QUERY_INTERVAL_MS: '60000',
    PROCESSING_QUERY_ATTEMPTS_MAX: '20',
    RECONCILE_SETTLE_MS: '30000',
  });
  psp = createPspHttpAdapter({ baseUrl: system.simUrl!, ...config.gateway });
});
test.after.always(async () => {
  await psp?.close();
  await system?.stop();
});

const OrderStatusRow = z.object({ id: z.string(), status: z.string(), evidence: z.boolean() });

test('when the provider is down for three minutes under load and then recovers, then every order ends by itself or in manual with its evidence, and none waits past its query', async (t) => {
  t.timeout(600_000);
  const { balance, ledger } = system.db.databases;
  const accounts: string[] = [];
  for (let u = 0; u < USERS; u += 1) accounts.push(await system.fundedAccount(`drill-${u}`, '1000.00'));
  const orders: PlacedOrder[] = [];
  let placed = 0;
  const place = async (count: number) => {
    for (let i = 0; i < count; i += 1, placed += 1) {
      const user = placed % USERS;
      orders.push(
        await placeWithdrawal(system, { userId: `drill-${user}`, accountId: accounts[user]!, amountMinor: 100n + BigInt(placed) }),
      );
    }
  };
  // simulated time runs ahead of the real clock, a step at a time
  let offsetMs = 0;
  const simNow = () => new Date(Date.now() + offsetMs);
  const overdue: number[] = [];
  const recover = async (now: Date) => {
    // the worker's own cron may hold recovery's lock for a moment: then this run waits its turn
    for (let attempt = 1; ; attempt += 1) {
      const run = await runRecovery({
        databases: system.db.databases,
        config,
        psp,
        logger,
        now,
        onApplied: () => system.worker?.drainers.gatewayInbox.wake(),
      });
      if (run.kind === 'ran') return run;
      if (attempt >= 100) throw new Error('recovery stayed busy');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  const step = async (orderCount: number) => {
    await place(orderCount);
    // the submissions of this step have their answers (or ran out of attempts) before time moves
    await waitForQuiescence(balance, ledger, 60_000);
    offsetMs += STEP_MS;
    const now = simNow();
    await recover(now);
    overdue.push(await overdueCount(balance, { status: 'processing', now, firstMs: FIRST_QUERY_MS }));
    await runReconciliation({ databases: system.db.databases, psp, config, logger, mode: 'incremental', now });
  };

  for (let i = 0; i < CALM_STEPS_BEFORE; i += 1) await step(ORDERS_PER_STEP);
  // the outage: every request to the provider errs (half after executing the payout) or hangs
  system.sim!.setKnobs({ errorRate: 0.7, hangRate: 0.3 });
  for (let i = 0; i < OUTAGE_STEPS; i += 1) await step(ORDERS_PER_STEP);
  system.sim!.setKnobs({ errorRate: 0, hangRate: 0, dropCallbackRate: 0.3 });
  // the load stops with the outage; the provider is back
  let open = Number.POSITIVE_INFINITY;
  let stepsAfter = 0;
  for (; stepsAfter < CONVERGE_STEPS_MAX && open > 0; stepsAfter += 1) {
    await step(0);
    await waitForQuiescence(balance, ledger, 60_000);
    open = await balance.oneFirst(sql.type(z.object({ n: z.number() }))`
      select count(*)::int as n from withdraw_orders where status in ('init', 'processing')`);
  }
  t.is(open, 0, `every order left init and processing within ${stepsAfter * (STEP_MS / 1000)} s of simulated time`);
  t.deepEqual(
    overdue.filter((n) => n > 0),
    [],
    'after every recovery run, no processing order waits past its scheduled query',
  );

  await waitForQuiescence(balance, ledger, 60_000);
  const rows = await balance.any(sql.type(OrderStatusRow)`
    select o.id, o.status,
           exists (select 1 from withdraw_status_history h where h.order_id = o.id and h.to_status = 'manual' and h.evidence is not null) as evidence
      from withdraw_orders o where o.id = any(${sql.array(
        orders.map((o) => o.orderId),
        'uuid',
      )})`);
  const byStatus: Record<string, number> = {};
  for (const row of rows) {
    byStatus[row.status] = (byStatus[row.status] ?? 0) + 1;
    t.true(['success', 'failed', 'manual'].includes(row.status), `${row.id} ended ${row.status}`);
    if (row.status === 'manual') t.true(row.evidence, `${row.id} is in manual with its evidence`);
  }
  t.log(JSON.stringify({ orders: orders.length, byStatus, convergedWithinSimulatedSeconds: stepsAfter * (STEP_MS / 1000) }));
  t.is(rows.length, (CALM_STEPS_BEFORE + OUTAGE_STEPS) * ORDERS_PER_STEP);
  t.true((byStatus.success ?? 0) > 0);
  for (const [reference, times] of Object.entries(system.sim!.stats().executed)) t.is(times, 1, `I7: ${reference}`);
  t.deepEqual(await allInvariants(balance, ledger), []);
  const full = await runReconciliation({ databases: system.db.databases, psp, config, logger, mode: 'full', now: simNow() });
  t.deepEqual(
    full.findings.map((f) => `${f.category} ${f.subject}: ${f.actual}`),
    [],
  );
});
