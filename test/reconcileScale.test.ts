// Reconciliation that keeps looking, at a cost that does not grow with history
// (reconcile/reconcileRun.ts, reconcile/providerChecks.ts): the provider-check cursor never freezes
// on one order the provider cannot answer; `--full` never moves it; final orders are checked again
// a day later (a reversal whose callback was lost, a failed order the provider still calls
// pending); a break on a subject skipped because it moved is not closed; a run reads a bounded
// window through indexes, and a failed run is retried on that bounded window. Runs take the time
// they run at (the clock seam): the tests move it forward instead of waiting.
import test from 'ava';
import { sql } from 'slonik';
import { z } from 'zod';
import type { Config } from '../app/config.ts';
import type { Databases } from '../app/db/pools.ts';
import { createLogger } from '../app/logger.ts';
import { createPspHttpAdapter } from '../app/gateway/pspHttpAdapter.ts';
import type { PayoutLookup, PspAdapter } from '../app/gateway/pspAdapter.ts';
import { postLedgerEvents } from '../app/ledger/ledgerPosting.ts';
import { runProviderChecks } from '../reconcile/providerChecks.ts';
import { runReconciliation } from '../reconcile/reconcileRun.ts';
import { placeMany, type PlacedOrder } from './helpers/asyncChecks.ts';
import { waitForQuiescence } from './helpers/quiescence.ts';
import { recoveryConfig } from './helpers/recoveryHarness.ts';
import { startTestSystem, type TestSystem } from './helpers/system.ts';

const logger = createLogger({ level: 'silent', name: 'test-reconcile-scale' });
const HOUR_MS = 3_600_000;

let system: TestSystem;
let real: PspAdapter;
let orders: PlacedOrder[] = [];

test.before(async () => {
  system = await startTestSystem({ worker: true });
  real = createPspHttpAdapter({ baseUrl: system.simUrl!, ...recoveryConfig(system).gateway });
  orders = (await placeMany(system, { userId: 'scale-a', count: 6, amountMinor: 300n, fundMinor: 10_000n })).orders;
  await system.waitForOrders(
    orders.map((o) => o.orderId),
    ['success'],
  );
  await waitForQuiescence(system.db.databases.balance, system.db.databases.ledger);
});
test.after.always(async () => {
  await real?.close();
  await system?.stop();
});

/** the provider, but for some references it answers as told */
function provider(answers: ReadonlyMap<string, PayoutLookup>): PspAdapter {
  return {
    submitPayout: real.submitPayout.bind(real),
    getPayout: async (reference) => answers.get(reference) ?? real.getPayout(reference),
    getSettlementStatement: real.getSettlementStatement.bind(real),
    close: async () => {},
  };
}

const CursorRow = z.object({ name: z.string(), orderId: z.string() });
async function cursors(balance: Databases['balance']) {
  return new Map(
    (await balance.any(sql.type(CursorRow)`select name, position_order::text as "orderId" from reconciliation_cursors`)).map((r) => [
      r.name,
      r.orderId,
    ]),
  );
}

async function openBreaks(category: string) {
  return system.db.databases.balance.anyFirst(sql.type(z.object({ subject: z.string() }))`
    select subject from reconciliation_breaks where category = ${category} and resolved_at is null order by subject`);
}

test.serial(
  'when one final order can never be answered, then the provider checks move past it, ask it again later, and after N tries make it a break',
  async (t) => {
    const { balance } = system.db.databases;
    const config = recoveryConfig(system, { RECONCILE_PROVIDER_UNKNOWN_MAX: '3' });
    // the six in the cursor's order: the stuck one first, so that the others come after it
    const inOrder = await balance.anyFirst(sql.type(z.object({ id: z.string() }))`
      select id from withdraw_orders where id = any(${sql.array(
        orders.map((o) => o.orderId),
        'uuid',
      )}) order by updated_at, id`);
    const stuck = orders.find((o) => o.orderId === inOrder[0])!;
    const psp = provider(new Map([[stuck.transactionId, { kind: 'unknown', reason: 'HTTP 500' } as const]]));
    const check = (now: Date) => runProviderChecks({ databases: system.db.databases, psp, config, logger, now });
    const first = await check(new Date());
    t.is(first.first.asked, 6);
    t.is(first.first.answered, 5, 'every order but the stuck one');
    t.is((await cursors(balance)).get('provider_first'), inOrder[5], 'the cursor is past all six');
    t.deepEqual(await openBreaks('provider_unanswered'), []);
    // asked again with a backoff (a minute, two, ...), a break at the third try
    const second = await check(new Date(Date.now() + 2 * 60_000));
    t.like(second.retried, { asked: 1, answered: 0 });
    t.deepEqual(await openBreaks('provider_unanswered'), []);
    const third = await check(new Date(Date.now() + 10 * 60_000));
    t.like(third.retried, { asked: 1, answered: 0 });
    t.deepEqual(await openBreaks('provider_unanswered'), [`order:${stuck.orderId}`]);
    t.like((await check(new Date(Date.now() + 60 * 60_000))).retried, { asked: 0 }, 'a break for a human, asked no more');
  },
);

test.serial('when --full runs, then the incremental provider cursor stays where it was', async (t) => {
  const { balance } = system.db.databases;
  const config = recoveryConfig(system);
  const before = await cursors(balance);
  const more = (await placeMany(system, { userId: 'scale-b', count: 3, amountMinor: 200n, fundMinor: 5_000n })).orders;
  await system.waitForOrders(
    more.map((o) => o.orderId),
    ['success'],
  );
  await waitForQuiescence(balance, system.db.databases.ledger);
  const full = await runReconciliation({ databases: system.db.databases, psp: real, config, logger, mode: 'full' });
  t.true(full.providerChecked >= 9, 'the full run asked about every final order');
  t.deepEqual(await cursors(balance), before, 'and moved no cursor');
  const next = await runProviderChecks({ databases: system.db.databases, psp: real, config, logger });
  t.is(next.first.asked, 3, 'the next incremental check goes on from where it was: the three new orders');
});

test.serial(
  'when a paid payout is reversed a day later with its callback lost, or a failed one is still pending, then the recheck a day later finds it',
  async (t) => {
    const config = recoveryConfig(system);
    const reversed = orders[2]!;
    // the recheck cursor walks orders a day (RECONCILE_RECHECK_AFTER_MS) behind
    const psp = provider(
      new Map([[reversed.transactionId, { kind: 'found', status: 'failed', failureCode: 'payout_reversed', detail: {} } as const]]),
    );
    const dayLater = new Date(Date.now() + 25 * HOUR_MS);
    const run = await runProviderChecks({ databases: system.db.databases, psp, config, logger, now: dayLater });
    t.true(run.recheck.asked >= 9, 'every final order once more');
    t.deepEqual(await openBreaks('provider_not_paid'), [`order:${reversed.orderId}`]);
    t.like(run.first, { asked: 0 });

    // a failed order the provider still calls pending
    system.sim!.setKnobs({ failAfterAcceptRate: 1 });
    const failed = (await placeMany(system, { userId: 'scale-c', count: 1, amountMinor: 100n, fundMinor: 1_000n })).orders[0]!;
    await system.waitForOrders([failed.orderId], ['failed']);
    system.sim!.setKnobs({ failAfterAcceptRate: 0 });
    const pending = provider(
      new Map([[failed.transactionId, { kind: 'found', status: 'pending', failureCode: null, detail: {} } as const]]),
    );
    await runProviderChecks({ databases: system.db.databases, psp: pending, config, logger, now: new Date(Date.now() + 26 * HOUR_MS) });
    t.deepEqual(await openBreaks('provider_not_final'), [`order:${failed.orderId}`]);
  },
);

test.serial('when a subject moves while a run checks it, then its open break is neither confirmed nor closed', async (t) => {
  const { balance, ledger } = system.db.databases;
  const config = recoveryConfig(system);
  const account = orders[0]!.accountId;
  // the wallet really disagrees (a ledger deposit with no credit), and an earlier run saw it
  const stray = '0190a0d2-5f0e-7c3a-8b1e-0000000000aa';
  await postLedgerEvents(
    ledger,
    [
      {
        outboxId: 1,
        topic: 'account.credited',
        transactionId: stray,
        payload: { transactionId: stray, accountId: account, amountMinor: '900', currency: 'USD' },
      },
    ],
    'planted',
  );
  await balance.query(sql.unsafe`
    select reconciliation_record_break('wallet_mismatch', ${`account:${account}`}, null, ${account}, null, 'USD', 'x', 'y', '{}')`);
  // the account moves between the Balance DB snapshot and the ledger read: a ledger pool that
  // touches it the first time the run looks at wallets
  let touched = false;
  const movingLedger = new Proxy(ledger, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (property !== 'any' || typeof value !== 'function') return typeof value === 'function' ? value.bind(target) : value;
      return async (query: { sql: string }) => {
        if (!touched && query.sql.includes('from ledger_accounts') && query.sql.includes('code = any')) {
          touched = true;
          await balance.query(sql.unsafe`update accounts set updated_at = now() where id = ${account}`);
        }
        return value.call(target, query);
      };
    },
  });
  // at rest when the run takes its snapshot
  await balance.query(sql.unsafe`update accounts set updated_at = now() - interval '1 hour' where id = ${account}`);
  const run = await runReconciliation({ databases: { balance, ledger: movingLedger }, psp: null, config, logger, mode: 'full' });
  t.true(touched);
  t.false(
    run.findings.some((f) => f.subject === `account:${account}` && f.category === 'wallet_mismatch'),
    'a moved subject is not judged',
  );
  t.deepEqual(await openBreaks('wallet_mismatch'), [`account:${account}`], 'its break stays open: nobody looked at it at rest');
});

test.serial(
  'when reconciliation falls behind or a run fails, then each run reads at most RECONCILE_WINDOW_MAX_MS of changes, through an index, and the next one goes on',
  async (t) => {
    const { balance } = system.db.databases;
    const config: Config = recoveryConfig(system, { RECONCILE_WINDOW_MAX_MS: String(HOUR_MS) });
    const at = (ms: number) => new Date(Date.now() + ms);
    const first = await runReconciliation({ databases: system.db.databases, psp: null, config, logger, mode: 'incremental', now: at(0) });
    // four hours without a run: the next ones catch up an hour at a time
    const behind = await runReconciliation({
      databases: system.db.databases,
      psp: null,
      config,
      logger,
      mode: 'incremental',
      now: at(4 * HOUR_MS),
    });
    t.is(Date.parse(behind.checkedUntil) - Date.parse(behind.checkedFrom!), HOUR_MS);
    t.is(behind.checkedFrom, first.checkedUntil);
    // a run that fails is retried on the same bounded window, not a longer one
    const broken = new Proxy(system.db.databases.ledger, {
      get(target, property, receiver) {
        if (property === 'any' || property === 'transaction') return async () => Promise.reject(new Error('the ledger is away'));
        const value = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    await t.throwsAsync(
      runReconciliation({ databases: { balance, ledger: broken }, psp: null, config, logger, mode: 'incremental', now: at(4 * HOUR_MS) }),
    );
    const retried = await runReconciliation({
      databases: system.db.databases,
      psp: null,
      config,
      logger,
      mode: 'incremental',
      now: at(5 * HOUR_MS),
    });
    t.is(retried.checkedFrom, behind.checkedUntil);
    t.is(Date.parse(retried.checkedUntil) - Date.parse(retried.checkedFrom!), HOUR_MS);

    const plan = await balance.transaction(async (tx) => {
      await tx.query(sql.unsafe`set local enable_seqscan = off`);
      return tx.anyFirst(sql.unsafe`
        explain select id from withdraw_orders
         where updated_at > now() - interval '5 minutes' and updated_at <= now() order by updated_at, id limit 5000`);
    });
    t.regex(plan.join('\n'), /withdraw_orders_updated_idx/, 'orders by updated_at through their index');
  },
);
