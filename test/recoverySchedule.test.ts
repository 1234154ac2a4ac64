// Recovery that keeps up (reconcile/recovery.ts): processing and manual orders are asked about in
// separate bounded batches, each on its own schedule (first PROCESSING_STALE_MS after the order
// entered its status, then doubling, capped), so manual orders never starve processing ones and
// no order is asked before its time; one run at a time, whoever schedules it. The runs take the
// time they run at (the clock seam): the tests move it forward instead of waiting.
import test from 'ava';
import { sql } from 'slonik';
import { z } from 'zod';
import type { Config } from '../app/config.ts';
import { createLogger } from '../app/logger.ts';
import { createPspHttpAdapter } from '../app/gateway/pspHttpAdapter.ts';
import type { PspAdapter } from '../app/gateway/pspAdapter.ts';
import { parsedCronItems, RECOVERY_JOB } from '../jobs/crontab.ts';
import { recoveryJobSpec, type WorkerProcess } from '../jobs/workerApp.ts';
import { overdueCount, queryStaleProcessing, runRecovery } from '../reconcile/recovery.ts';
import { placeMany, placeWithdrawal, type PlacedOrder } from './helpers/asyncChecks.ts';
import { recoveryConfig } from './helpers/recoveryHarness.ts';
import { startTestSystem, type TestSystem } from './helpers/system.ts';

const logger = createLogger({ level: 'silent', name: 'test-recovery-schedule' });
const FIRST_MS = 15_000;
const CAP_MS = 60_000;

let system: TestSystem;
let worker: WorkerProcess | null = null;
let config: Config;
let psp: PspAdapter;

test.before(async () => {
  system = await startTestSystem({ worker: true });
  config = recoveryConfig(system, {
    PROCESSING_STALE_MS: String(FIRST_MS),
    PROCESSING_QUERY_INTERVAL_MS: String(CAP_MS),
    PROCESSING_QUERY_ATTEMPTS_MAX: '1000',
    RECOVERY_BATCH_SIZE_MAX: '10',
    RECOVERY_MANUAL_BATCH_SIZE_MAX: '10',
  });
  psp = createPspHttpAdapter({ baseUrl: system.simUrl!, ...config.gateway });
});
test.after.always(async () => {
  await worker?.stop();
  await psp?.close();
  await system?.stop();
});

const ask = (now: Date, cfg: Config = config) => queryStaleProcessing({ databases: system.db.databases, config: cfg, psp, logger, now });
const after = (ms: number) => new Date(Date.now() + ms);

const ScheduleRow = z.object({ status: z.string(), nextQueryAt: z.number().nullable(), updatedAt: z.number(), queries: z.number() });
async function schedule(order: PlacedOrder) {
  return system.db.databases.balance.one(sql.type(ScheduleRow)`
    select o.status, o.next_query_at as "nextQueryAt", o.updated_at as "updatedAt",
           (select count(*) from gateway_status_queries q where q.transaction_id = o.transaction_id)::int as queries
      from withdraw_orders o where o.id = ${order.orderId}`);
}

test.serial(
  'when more manual orders than a batch are older than the processing ones, then every run still asks about the processing orders',
  async (t) => {
    const { balance } = system.db.databases;
    // 25 manual orders the provider never heard of, changed before the processing ones
    await system.worker!.stop();
    const accountId = await system.fundedAccount('starve-manual', '100.00');
    const manual: PlacedOrder[] = [];
    for (let i = 0; i < 25; i += 1) manual.push(await placeWithdrawal(system, { userId: 'starve-manual', accountId, amountMinor: 100n }));
    await balance.query(sql.unsafe`
      select withdraw_transition(o.transaction_id, array['init'], 'manual', 'job', 'test', 'outcome unknown')
        from withdraw_orders o where o.id = any(${sql.array(
          manual.map((o) => o.orderId),
          'uuid',
        )})`);
    // three processing orders whose callbacks were lost; the provider paid them
    worker = await system.startWorker();
    system.sim!.setKnobs({ dropCallbackRate: 1 });
    const { orders: processing } = await placeMany(system, { userId: 'starve-processing', count: 3, amountMinor: 500n, fundMinor: 5_000n });
    await system.waitForOrders(
      processing.map((o) => o.orderId),
      ['processing'],
    );
    system.sim!.setKnobs({ dropCallbackRate: 0 });

    // runs an hour apart: every manual order is due again each time
    const first = await ask(after(3_600_000));
    t.like(first, { queried: 13, answered: 3 }, 'the three processing orders, and a batch of manual ones');
    const settled = await system.waitForOrders(
      processing.map((o) => o.orderId),
      ['success'],
    );
    t.deepEqual(
      processing.map((o) => settled.get(o.orderId)),
      ['success', 'success', 'success'],
    );
    // and the manual orders take turns, earliest due first: each is asked within three runs
    await ask(after(2 * 3_600_000));
    await ask(after(3 * 3_600_000));
    const asked = await balance.anyFirst(sql.type(z.object({ n: z.number() }))`
      select count(*)::int as n from gateway_status_queries
       where transaction_id = any(${sql.array(
         manual.map((o) => o.transactionId),
         'uuid',
       )}) group by transaction_id`);
    t.is(asked.length, 25, 'every manual order was asked');
  },
);

test.serial(
  'when a processing order hears nothing, then it is asked first PROCESSING_STALE_MS after acceptance, then after doubling delays, never before its time, and its updatedAt stays',
  async (t) => {
    system.sim!.setKnobs({ hangRate: 0, dropCallbackRate: 1 });
    const { orders } = await placeMany(system, { userId: 'sched-quiet', count: 1, amountMinor: 700n, fundMinor: 5_000n });
    const order = orders[0]!;
    await system.waitForOrders([order.orderId], ['processing']);
    // the provider says pending: the payout settles only later (its answer says nothing yet)
    const pendingPsp: PspAdapter = {
      submitPayout: psp.submitPayout.bind(psp),
      getPayout: async () => ({ kind: 'found', status: 'pending', failureCode: null, detail: { status: 'pending' } }),
      getSettlementStatement: psp.getSettlementStatement.bind(psp),
      close: async () => {},
    };
    const askPending = (now: Date) => queryStaleProcessing({ databases: system.db.databases, config, psp: pendingPsp, logger, now });
    const accepted = (await schedule(order)).updatedAt;
    const at = (ms: number) => new Date(accepted + ms);

    t.like(await askPending(at(FIRST_MS - 1_000)), { queried: 0 }, 'not before the first query is due');
    t.like(await askPending(at(FIRST_MS + 1)), { queried: 1, pending: 1 });
    const delays: number[] = [];
    let now = at(FIRST_MS + 1);
    for (let i = 0; i < 4; i += 1) {
      const { nextQueryAt } = await schedule(order);
      delays.push(nextQueryAt! - now.getTime());
      t.like(await askPending(new Date(nextQueryAt! - 1)), { queried: 0 }, 'not a moment before its time');
      now = new Date(nextQueryAt!);
      t.like(await askPending(now), { queried: 1, pending: 1 });
    }
    t.deepEqual(delays, [FIRST_MS, 2 * FIRST_MS, CAP_MS, CAP_MS], 'doubling, then capped');
    const row = await schedule(order);
    t.is(row.queries, 5);
    t.is(row.updatedAt, accepted, 'asking changes nothing a client sees');
    t.is(await overdueCount(system.db.databases.balance, { status: 'processing', now, firstMs: FIRST_MS }), 0);

    // the real provider knows it is paid: the next due query settles it
    t.like(await ask(new Date(row.nextQueryAt!)), { queried: 1, answered: 1 });
    await system.waitForOrders([order.orderId], ['success']);
    t.is((await schedule(order)).nextQueryAt, null, 'a final order has no schedule');
    system.sim!.setKnobs({ dropCallbackRate: 0 });
  },
);

test('when recovery is scheduled by the cron and by a worker’s timer, then it is one job: one task, one key, one queue', (t) => {
  const recovery = parsedCronItems().filter((item) => item.task.startsWith('recovery__'));
  t.is(recovery.length, 1, 'one cron line for all of recovery');
  const cron = recovery[0]!;
  const timer = recoveryJobSpec();
  t.is(cron.task, RECOVERY_JOB.task);
  t.is(cron.options.jobKey, timer.jobKey);
  t.is(cron.options.queueName, timer.queueName);
  t.truthy(timer.queueName, 'a named queue: graphile-worker runs one of its jobs at a time');
});

test.serial('when two recovery runs start at once, then one runs and the other finds it busy and does nothing', async (t) => {
  let entered!: () => void;
  const inside = new Promise<void>((resolve) => {
    entered = resolve;
  });
  let open!: () => void;
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  const slow: PspAdapter = {
    submitPayout: psp.submitPayout.bind(psp),
    getPayout: async (reference) => {
      entered();
      await gate;
      return psp.getPayout(reference);
    },
    getSettlementStatement: psp.getSettlementStatement.bind(psp),
    close: async () => {},
  };
  system.sim!.setKnobs({ dropCallbackRate: 1 });
  const { orders } = await placeMany(system, { userId: 'sched-once', count: 1, amountMinor: 300n, fundMinor: 1_000n });
  await system.waitForOrders([orders[0]!.orderId], ['processing']);
  system.sim!.setKnobs({ dropCallbackRate: 0 });
  const now = after(3_600_000);
  const first = runRecovery({ databases: system.db.databases, config, psp: slow, logger, now });
  await inside; // the first run holds the lock while it waits for the provider
  const second = await runRecovery({ databases: system.db.databases, config, psp, logger, now });
  t.deepEqual(second, { kind: 'busy' });
  open();
  t.like(await first, { kind: 'ran' });
  t.like(await runRecovery({ databases: system.db.databases, config, psp, logger, now }), { kind: 'ran' }, 'and the lock is let go');
});
