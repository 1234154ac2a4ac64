// Recovery without a human, and manual review with one. The recovery functions are called
// directly with small thresholds (recoveryConfig) and a clock ten minutes ahead (testClock), so
// orders are stale without waiting; the worker of the system has no crons, so only the tests run
// recovery. The tests share one simulator and change its knobs, so they run one after another.
import test, { type ExecutionContext } from 'ava';
import { sql } from 'slonik';
import { z } from 'zod';
import type { Config } from '../app/config.ts';
import { createLogger } from '../app/logger.ts';
import { createPspHttpAdapter } from '../app/gateway/pspHttpAdapter.ts';
import type { PspAdapter } from '../app/gateway/pspAdapter.ts';
import type { WorkerProcess } from '../jobs/workerApp.ts';
import { allInvariants } from '../reconcile/invariants.ts';
import { queryStaleProcessing, resumeStaleInit, type ProcessingRecovery } from '../reconcile/recovery.ts';
import {
  accountMinor,
  eventually,
  historyOf,
  journalKindsOf,
  ordersById,
  placeMany,
  placeWithdrawal,
  submitAttempts,
  type PlacedOrder,
} from './helpers/asyncChecks.ts';
import { call } from './helpers/http.ts';
import { waitForQuiescence } from './helpers/quiescence.ts';
import { closedPort, recoveryConfig, testClock } from './helpers/recoveryHarness.ts';
import { startTestSystem, type TestSystem } from './helpers/system.ts';

const ALICE = { name: 'alice', token: 'alice-operator-token-0123456789' };
const SUBMIT_ATTEMPTS_MAX = 2;
const QUERY_ATTEMPTS_MAX = 3;

let system: TestSystem;
/** the worker now running (the system's own until a test restarts it) */
let worker: WorkerProcess | null = null;
let config: Config;
let psp: PspAdapter;
let deadPsp: PspAdapter;
const logger = createLogger({ level: 'silent', name: 'test-recovery' });
const clock = testClock();

test.before(async () => {
  system = await startTestSystem({
    worker: true,
    env: { GATEWAY_SUBMIT_ATTEMPTS_MAX: String(SUBMIT_ATTEMPTS_MAX), ADMIN_TOKENS: `${ALICE.name}:${ALICE.token}` },
    cronItems: [],
  });
  worker = system.worker;
  config = recoveryConfig(system, { PROCESSING_QUERY_ATTEMPTS_MAX: String(QUERY_ATTEMPTS_MAX) });
  psp = createPspHttpAdapter({ baseUrl: system.simUrl!, ...config.gateway });
  deadPsp = createPspHttpAdapter({ baseUrl: `http://127.0.0.1:${await closedPort()}`, ...config.gateway });
});
test.after.always(async () => {
  await worker?.stop();
  await psp?.close();
  await deadPsp?.close();
  await system?.stop();
});

const databases = () => system.db.databases;
const ids = (orders: readonly PlacedOrder[]) => orders.map((o) => o.orderId);
const txs = (orders: readonly PlacedOrder[]) => orders.map((o) => o.transactionId);

async function stopWorker() {
  await worker?.stop();
  worker = null;
}
async function startWorker() {
  worker = await system.startWorker();
}

/** recovery__stale_processing at `now` (default: the test clock's now) */
function processing(adapter: PspAdapter, cfg: Config = config, now: Date = clock.now()): Promise<ProcessingRecovery> {
  return queryStaleProcessing({
    databases: databases(),
    config: cfg,
    psp: adapter,
    logger,
    onApplied: () => worker?.drainers.gatewayInbox.wake(),
    now,
  });
}

/** Waits until the provider has settled every order (paid or failed), whether or not it calls back. */
async function providerSettled(orders: readonly PlacedOrder[]): Promise<void> {
  await eventually('the provider to settle every payout', async () => {
    const lookups = await Promise.all(orders.map((o) => psp.getPayout(o.transactionId)));
    return lookups.every((l) => l.kind === 'found' && l.status !== 'pending');
  });
}

/** recovery__stale_init at the test clock's now */
const resumeInit = () => resumeStaleInit({ databases: databases(), config, logger, now: clock.now() });

const StatusQueryRow = z.object({ transactionId: z.string(), result: z.string(), detail: z.record(z.unknown()) });
async function statusQueries(transactionIds: readonly string[]) {
  return databases().balance.any(sql.type(StatusQueryRow)`
    select transaction_id as "transactionId", result, detail from gateway_status_queries
     where transaction_id = any(${sql.array([...transactionIds], 'uuid')}) order by id`);
}

const AuditRow = z.object({
  operator: z.string(),
  action: z.string(),
  subject: z.string(),
  details: z.record(z.unknown()),
  requestId: z.string().nullable(),
});
async function auditOf(subject: string) {
  return databases().balance.any(sql.type(AuditRow)`
    select operator, action, subject, details, request_id as "requestId" from admin_audit_log where subject = ${subject} order by id`);
}

async function checkSettled(t: ExecutionContext) {
  const { balance, ledger } = databases();
  await waitForQuiescence(balance, ledger);
  t.deepEqual(await allInvariants(balance, ledger), []);
}

test.serial(
  'when init orders lost their relay or their ledger job, then resumeStaleInit resumes them to success, each paid once, and a second call changes nothing',
  async (t) => {
    const { balance, ledger } = databases();
    system.sim!.setKnobs({ dropCallbackRate: 0, failAfterAcceptRate: 0, hangRate: 0 });
    const accountId = await system.fundedAccount('rec-init', '100.00');
    await waitForQuiescence(balance, ledger);
    await stopWorker();
    t.teardown(async () => {
      if (!worker) await startWorker();
    }); // the next tests need a worker even if this one fails
    const orders: PlacedOrder[] = [];
    for (let i = 0; i < 6; i += 1)
      orders.push(await placeWithdrawal(system, { userId: 'rec-init', accountId, amountMinor: 500n + BigInt(i) }));
    const lostRelay = orders.slice(0, 3);
    const lostJob = orders.slice(3);
    // as if a relay lost them: marked relayed, never enqueued
    await balance.query(sql.unsafe`
    update outbox set relayed_at = now() where transaction_id = any(${sql.array(txs(lostRelay), 'uuid')}) and topic = 'withdraw.created'`);
    // as if the queued ledger__post job were lost: relayed properly, then the job deleted
    t.is(await balance.oneFirst(sql.type(z.object({ n: z.number() }))`select outbox_relay_balance(500) as n`), 3);
    const queued = await balance.anyFirst(sql.type(z.object({ tx: z.string() }))`
    select e ->> 'transactionId' as tx from graphile_worker._private_jobs j
      join graphile_worker._private_tasks k on k.id = j.task_id, json_array_elements(j.payload -> 'events') e
     where k.identifier = 'ledger__post'`);
    t.deepEqual([...queued].sort(), txs(lostJob).sort(), 'the relayed batch carries exactly the other three');
    const deleted = await balance.anyFirst(sql.type(z.object({ id: z.bigint() }))`
    select id from graphile_worker.complete_jobs((select array_agg(id) from graphile_worker.jobs where task_identifier = 'ledger__post'))`);
    t.true(deleted.length >= 1);
    t.deepEqual(
      [...(await ordersById(balance, ids(orders))).values()].map((o) => o.status),
      Array(6).fill('init'),
    );
    t.deepEqual([...(await journalKindsOf(ledger, txs(orders))).values()], Array(6).fill([]));

    t.is(await resumeInit(), 6);
    t.deepEqual([...(await journalKindsOf(ledger, txs(orders))).values()], Array(6).fill(['hold']), 'the holds are posted first');
    const submits = await balance.anyFirst(sql.type(z.object({ key: z.string() }))`
    select key from graphile_worker.jobs where task_identifier = 'gateway__submit' and key = any(${sql.array(
      txs(orders).map((tx) => `gateway-submit:${tx}`),
      'text',
    )})`);
    t.is(submits.length, 6, 'one submission queued per order');
    t.is(await resumeInit(), 0, 'a queued submission is progress, not a stall');

    await startWorker();
    const statuses = await system.waitForOrders(ids(orders), ['success', 'failed', 'manual']);
    t.deepEqual(
      ids(orders).map((id) => statuses.get(id)),
      Array(6).fill('success'),
    );
    await checkSettled(t);
    const executed = system.sim!.stats().executed;
    for (const order of orders) t.is(executed[order.transactionId], 1, `I7: ${order.transactionId}`);
    t.deepEqual([...(await journalKindsOf(ledger, txs(orders))).values()], Array(6).fill(['hold', 'settle']));
    t.like(await accountMinor(balance, accountId), { balance: 10_000n - 3_015n, available: 10_000n - 3_015n, reserved: 0n });

    const journalsBefore = await ledger.oneFirst(
      sql.type(z.object({ n: z.number() }))`select count(*)::int as n from journal_transactions`,
    );
    t.is(await resumeInit(), 0);
    await checkSettled(t);
    t.is(await ledger.oneFirst(sql.type(z.object({ n: z.number() }))`select count(*)::int as n from journal_transactions`), journalsBefore);
    t.deepEqual(system.sim!.stats().executed, executed);
  },
);

test.serial(
  'when callbacks are dropped, then a status query finds the outcome: paid ends success, failed ends failed, with the query as evidence',
  async (t) => {
    const { balance } = databases();
    system.sim!.setKnobs({ dropCallbackRate: 1, failAfterAcceptRate: 0, hangRate: 0 });
    const paid = await placeMany(system, { userId: 'rec-drop-paid', count: 3, amountMinor: 700n, fundMinor: 5_000n });
    // the simulator decides an outcome when it accepts: change the knob only once these are accepted
    await system.waitForOrders(ids(paid.orders), ['processing']);
    system.sim!.setKnobs({ failAfterAcceptRate: 1 });
    const failed = await placeMany(system, { userId: 'rec-drop-failed', count: 3, amountMinor: 900n, fundMinor: 5_000n });
    const all = [...paid.orders, ...failed.orders];
    const accepted = await system.waitForOrders(ids(all), ['processing', 'success', 'failed', 'manual']);
    t.deepEqual(
      ids(all).map((id) => accepted.get(id)),
      Array(6).fill('processing'),
      'accepted, and no callback came',
    );
    await providerSettled(all);

    const summary = await processing(psp);
    t.deepEqual(summary, { queried: 6, answered: 6, pending: 0, manual: 0, unknown: 0 });
    const statuses = await system.waitForOrders(ids(all), ['success', 'failed', 'manual']);
    t.deepEqual(
      ids(paid.orders).map((id) => statuses.get(id)),
      Array(3).fill('success'),
    );
    t.deepEqual(
      ids(failed.orders).map((id) => statuses.get(id)),
      Array(3).fill('failed'),
    );
    await checkSettled(t);

    const queries = await statusQueries(txs(all));
    t.deepEqual(
      queries.map((q) => [q.transactionId, q.result]).sort(),
      [...paid.orders.map((o) => [o.transactionId, 'paid']), ...failed.orders.map((o) => [o.transactionId, 'failed'])].sort(),
    );
    for (const order of paid.orders) {
      const last = (await historyOf(balance, order.orderId)).at(-1)!;
      t.like(last, {
        fromStatus: 'processing',
        toStatus: 'success',
        actor: 'provider',
        actorId: `status-query:${order.transactionId}:paid`,
      });
    }
    const rows = await ordersById(balance, ids(failed.orders));
    t.deepEqual(
      ids(failed.orders).map((id) => rows.get(id)?.failureReason),
      Array(3).fill('beneficiary_bank_rejected'),
    );
    t.like(await accountMinor(balance, paid.accountId), { balance: 5_000n - 2_100n, reserved: 0n });
    t.like(await accountMinor(balance, failed.accountId), { balance: 5_000n, available: 5_000n, reserved: 0n });
    const kinds = await journalKindsOf(databases().ledger, txs(all));
    t.deepEqual(
      txs(paid.orders).map((tx) => kinds.get(tx)),
      Array(3).fill(['hold', 'settle']),
    );
    t.deepEqual(
      txs(failed.orders).map((tx) => kinds.get(tx)),
      Array(3).fill(['hold', 'reverse']),
    );
    const executed = system.sim!.stats().executed;
    for (const order of all) t.is(executed[order.transactionId], 1);

    t.deepEqual(await processing(psp), { queried: 0, answered: 0, pending: 0, manual: 0, unknown: 0 }, 'nothing left in processing');
    t.is((await statusQueries(txs(all))).length, 6);
  },
);

test.serial(
  'when the provider cannot answer, then after PROCESSING_QUERY_ATTEMPTS_MAX queries the order goes to manual with the queries as evidence',
  async (t) => {
    const { balance } = databases();
    system.sim!.setKnobs({ dropCallbackRate: 1, failAfterAcceptRate: 0, hangRate: 0 });
    const { accountId, orders } = await placeMany(system, { userId: 'rec-dark', count: 2, amountMinor: 1_100n, fundMinor: 10_000n });
    await system.waitForOrders(ids(orders), ['processing']);

    const totals: ProcessingRecovery = { queried: 0, answered: 0, pending: 0, manual: 0, unknown: 0 };
    const add = (s: ProcessingRecovery) => {
      for (const k of Object.keys(totals) as (keyof ProcessingRecovery)[]) totals[k] += s[k];
    };
    const firstAt = clock.now();
    add(await processing(deadPsp, config, firstAt));
    t.like(totals, { queried: 2, unknown: 2 });
    // within PROCESSING_QUERY_INTERVAL_MS of the last query an order is not asked about again
    const interval = config.recovery.processingQueryIntervalMs;
    t.like(await processing(deadPsp, config, new Date(firstAt.getTime() + interval - 1)), { queried: 0 });
    let lastAt = firstAt;
    for (let round = 0; round < 2 * QUERY_ATTEMPTS_MAX && totals.manual < 2; round += 1) {
      lastAt = clock.advance(interval + 1);
      add(await processing(deadPsp, config, lastAt));
    }
    t.deepEqual(totals, { queried: 2 * QUERY_ATTEMPTS_MAX, answered: 0, pending: 0, manual: 2, unknown: 2 * (QUERY_ATTEMPTS_MAX - 1) });
    const rows = await ordersById(balance, ids(orders));
    t.deepEqual(
      ids(orders).map((id) => rows.get(id)?.status),
      ['manual', 'manual'],
    );
    const queries = await statusQueries(txs(orders));
    t.is(queries.length, 2 * QUERY_ATTEMPTS_MAX);
    t.true(
      queries.every((q) => q.result === 'unknown' && typeof q.detail.reason === 'string'),
      JSON.stringify(queries),
    );
    for (const order of orders) {
      const last = (await historyOf(balance, order.orderId)).at(-1)!;
      t.like(last, { fromStatus: 'processing', toStatus: 'manual', actor: 'reconciler', actorId: 'recovery__stale_processing' });
      const evidence = last.evidence as { statusQueries: Array<{ result: string }> };
      t.deepEqual(
        evidence.statusQueries.map((q) => q.result),
        Array(QUERY_ATTEMPTS_MAX).fill('unknown'),
      );
    }
    // the money stays reserved while the outcome is unknown
    t.like(await accountMinor(balance, accountId), { balance: 10_000n, available: 10_000n - 2_200n, reserved: 2_200n });
    // within PROCESSING_QUERY_INTERVAL_MS of the last queries nobody asks again, not even the live
    // provider (which knows the outcome: the review test below finds them still manual)
    const within = new Date(lastAt.getTime() + interval - 1);
    t.like(await processing(deadPsp, config, within), { queried: 0 });
    t.like(await processing(psp, config, within), { queried: 0 });
    await checkSettled(t);
  },
);

test.serial(
  'when a submission outcome stays unknown, then the order ends manual with its money reserved, and an operator resolves it exactly once, audited',
  async (t) => {
    const { balance, ledger } = databases();
    system.sim!.setKnobs({ hangRate: 1, dropCallbackRate: 0, failAfterAcceptRate: 0 });
    const { accountId, orders } = await placeMany(system, { userId: 'rec-hang', count: 4, amountMinor: 1_000n, fundMinor: 10_000n });
    const statuses = await system.waitForOrders(ids(orders), ['manual', 'success', 'failed'], 30_000);
    system.sim!.setKnobs({ hangRate: 0 });
    t.deepEqual(
      ids(orders).map((id) => statuses.get(id)),
      Array(4).fill('manual'),
    );
    await waitForQuiescence(balance, ledger);
    t.like(await accountMinor(balance, accountId), { balance: 10_000n, available: 6_000n, reserved: 4_000n });
    const attempts = await submitAttempts(balance, txs(orders));
    t.deepEqual(
      attempts.map((a) => a.result),
      Array(4 * SUBMIT_ATTEMPTS_MAX).fill('unknown'),
    );
    const executed = system.sim!.stats().executed;
    for (const order of orders) t.is(executed[order.transactionId], undefined, 'the provider never executed it');

    // the review list shows every manual order with its evidence
    const list = await call(system.url, 'GET', '/admin/withdraws?status=manual', { token: system.adminToken });
    t.is(list.status, 200, list.text);
    const listed = new Map<string, any>((list.body.data.orders as any[]).map((o) => [o.withdrawOrderId, o]));
    for (const order of orders) {
      const entry = listed.get(order.orderId);
      t.like(entry, { status: 'manual', transactionId: order.transactionId, amount: '10.00', userId: 'rec-hang' });
      t.is(entry.evidence.submitAttempts.length, SUBMIT_ATTEMPTS_MAX);
      t.deepEqual(
        entry.evidence.history.map((h: any) => h.to),
        ['init', 'manual'],
      );
      t.is(entry.evidence.statusQueries, null);
    }
    const dark = [...listed.values()].filter((o) => o.userId === 'rec-dark');
    t.is(dark.length, 2, 'the orders the provider could not confirm are listed too');
    for (const order of dark) t.is(order.evidence.statusQueries.length, QUERY_ATTEMPTS_MAX);
    t.true([...listed.values()].every((o) => o.status === 'manual'));
    t.is((await call(system.url, 'GET', '/admin/withdraws?status=bogus', { token: system.adminToken })).status, 400);
    t.is((await call(system.url, 'GET', '/admin/withdraws?status=manual', { token: 'not-the-admin-token-at-all' })).status, 401);
    const finished = await call(system.url, 'GET', '/admin/withdraws?status=success&limit=500', { token: system.adminToken });
    t.true((finished.body.data.orders as any[]).some((o) => o.userId === 'rec-init' && o.status === 'success'));
    const one = await call(system.url, 'GET', `/admin/withdraws/${orders[0]!.orderId}`, { token: system.adminToken });
    t.is(one.status, 200);
    t.is(one.body.data.evidence.submitAttempts.length, SUBMIT_ATTEMPTS_MAX);

    const [toFail, toPay] = orders as [PlacedOrder, PlacedOrder, ...PlacedOrder[]];
    const resolve = (orderId: string, outcome: string, auth: { token: string; operator?: string }, override?: boolean) =>
      call(system.url, 'POST', `/admin/withdraws/${orderId}/resolve`, {
        token: auth.token,
        headers: auth.operator ? { 'x-operator': auth.operator } : {},
        body: { outcome, reason: 'bank statement checked', ...(override === undefined ? {} : { override }) },
      });

    // failed: every attempt timed out, so the provider's 404 proves nothing (a timeout may have been
    // executed): refused, and only an operator holding evidence releases it
    const guarded = await resolve(toFail.orderId, 'failed', { token: ALICE.token });
    t.is(guarded.status, 409, guarded.text);
    t.is(guarded.body.code, 40902);
    t.like(await accountMinor(balance, accountId), { balance: 10_000n, available: 6_000n, reserved: 4_000n });
    // failed, by a named operator, with the override: released once
    const failedReply = await resolve(toFail.orderId, 'failed', { token: ALICE.token }, true);
    t.is(failedReply.status, 200, failedReply.text);
    t.like(failedReply.body, { code: 0, msg: 'resolved', data: { status: 'failed', operator: ALICE.name } });
    t.like(await accountMinor(balance, accountId), { balance: 10_000n, available: 7_000n, reserved: 3_000n });
    const again = await resolve(toFail.orderId, 'failed', { token: ALICE.token }, true);
    t.is(again.status, 200);
    t.like(again.body, { code: 0, msg: 'already resolved', data: { status: 'failed' } });
    const contrary = await resolve(toFail.orderId, 'success', { token: ALICE.token });
    t.is(contrary.status, 422);
    t.is(contrary.body.code, 42205);
    t.like(await accountMinor(balance, accountId), { balance: 10_000n, available: 7_000n, reserved: 3_000n });

    // success, by the shared token (an X-Operator header names no one): captured once
    const paidReply = await resolve(toPay.orderId, 'success', { token: system.adminToken, operator: 'bob' });
    t.is(paidReply.status, 200, paidReply.text);
    t.like(paidReply.body, { msg: 'resolved', data: { status: 'success', operator: 'admin' } });
    t.like(await accountMinor(balance, accountId), { balance: 9_000n, available: 7_000n, reserved: 2_000n });
    t.like((await resolve(toPay.orderId, 'success', { token: system.adminToken })).body, { msg: 'already resolved' });
    const contraryPay = await resolve(toPay.orderId, 'failed', { token: system.adminToken, operator: 'bob' });
    t.is(contraryPay.status, 422);
    t.is(contraryPay.body.code, 42205);
    t.like(await accountMinor(balance, accountId), { balance: 9_000n, available: 7_000n, reserved: 2_000n });

    await checkSettled(t);
    const kinds = await journalKindsOf(ledger, [toFail.transactionId, toPay.transactionId]);
    t.deepEqual(kinds.get(toFail.transactionId), ['hold', 'reverse']);
    t.deepEqual(kinds.get(toPay.transactionId), ['hold', 'settle']);

    const failHistory = await historyOf(balance, toFail.orderId);
    t.deepEqual(
      failHistory.map((h) => h.toStatus),
      ['init', 'manual', 'failed'],
    );
    t.like(failHistory.at(-1), { fromStatus: 'manual', actor: 'operator', actorId: ALICE.name, reason: 'bank statement checked' });
    const payHistory = await historyOf(balance, toPay.orderId);
    t.deepEqual(
      payHistory.map((h) => h.toStatus),
      ['init', 'manual', 'success'],
    );
    t.like(payHistory.at(-1), { fromStatus: 'manual', actor: 'operator', actorId: 'admin' });

    const failAudit = await auditOf(`order:${toFail.orderId}`);
    t.is(failAudit.length, 1, 'one audit row: the repeats changed nothing');
    t.like(failAudit[0], {
      operator: ALICE.name,
      action: 'withdraw.resolve',
      details: { outcome: 'failed', reason: 'bank statement checked', transactionId: toFail.transactionId },
    });
    t.truthy(failAudit[0]!.requestId);
    const payAudit = await auditOf(`order:${toPay.orderId}`);
    t.is(payAudit.length, 1);
    t.like(payAudit[0], { operator: 'admin', action: 'withdraw.resolve', details: { outcome: 'success' } });
  },
);

test.serial(
  'when the order is not manual or does not exist, or the request is bad, then resolve refuses and changes nothing',
  async (t) => {
    const { balance } = databases();
    system.sim!.setKnobs({ hangRate: 0, dropCallbackRate: 1, failAfterAcceptRate: 0 });
    const { accountId, orders } = await placeMany(system, { userId: 'rec-notmanual', count: 2, amountMinor: 300n, fundMinor: 1_000n });
    await system.waitForOrders(ids(orders), ['processing']);
    system.sim!.setKnobs({ dropCallbackRate: 0 });
    const [inProcessing] = orders as [PlacedOrder, PlacedOrder];
    const resolve = (orderId: string, body: unknown) =>
      call(system.url, 'POST', `/admin/withdraws/${orderId}/resolve`, { token: ALICE.token, body });

    for (const outcome of ['success', 'failed']) {
      const reply = await resolve(inProcessing.orderId, { outcome, reason: 'looks done' });
      t.is(reply.status, 422, reply.text);
      t.is(reply.body.code, 42205);
    }
    // a final order that never was manual: neither outcome "resolves" it
    const done = await system.db.databases.balance.oneFirst(sql.type(z.object({ id: z.string() }))`
    select id from withdraw_orders where user_id = 'rec-init' and status = 'success' limit 1`);
    for (const outcome of ['success', 'failed']) {
      const reply = await resolve(done, { outcome, reason: 'looks done' });
      t.is(reply.status, 422, `${outcome}: ${reply.text}`);
      t.is(reply.body.code, 42205);
    }
    const unknown = await resolve('0190a0d2-5f0e-7c3a-8b1e-1234567890ab', { outcome: 'failed', reason: 'no such thing' });
    t.is(unknown.status, 404);
    t.is(unknown.body.code, 40401);
    t.is((await resolve('not-a-uuid', { outcome: 'failed', reason: 'no such thing' })).status, 404);
    t.is(
      (await call(system.url, 'GET', '/admin/withdraws/0190a0d2-5f0e-7c3a-8b1e-1234567890ab', { token: system.adminToken })).status,
      404,
    );
    const badOutcome = await resolve(inProcessing.orderId, { outcome: 'maybe', reason: 'looks done' });
    t.is(badOutcome.status, 400);
    t.is(badOutcome.body.code, 40001);
    t.is((await resolve(inProcessing.orderId, { outcome: 'failed' })).status, 400, 'a reason is required');
    t.is(
      (
        await call(system.url, 'POST', `/admin/withdraws/${inProcessing.orderId}/resolve`, {
          token: 'not-the-admin-token-at-all',
          body: { outcome: 'failed', reason: 'looks done' },
        })
      ).status,
      401,
    );
    t.is(
      (
        await call(system.url, 'POST', `/admin/withdraws/${inProcessing.orderId}/resolve`, {
          token: system.adminToken,
          headers: { 'x-operator': 'bad name!' },
          body: { outcome: 'failed', reason: 'looks done' },
        })
      ).status,
      422,
      'X-Operator is ignored (it names no one): the order is refused for not being manual',
    );

    t.like(await accountMinor(balance, accountId), { balance: 1_000n, available: 400n, reserved: 600n });
    t.deepEqual(await auditOf(`order:${inProcessing.orderId}`), []);
    t.deepEqual(await auditOf(`order:${done}`), []);
    const history = await historyOf(balance, inProcessing.orderId);
    t.deepEqual(
      history.map((h) => h.toStatus),
      ['init', 'processing'],
    );

    // let them finish, so the file ends with nothing in processing
    await providerSettled(orders);
    // (manual orders of earlier tests the provider has an answer for are applied too)
    t.true((await processing(psp, config, clock.advance(config.recovery.processingQueryIntervalMs + 1))).answered >= 2);
    await system.waitForOrders(ids(orders), ['success']);
    await checkSettled(t);
  },
);
