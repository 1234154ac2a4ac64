// The guard on resolving a manual order as `failed` (app/admin/manualReview.ts): releasing the
// money the provider paid out pays twice, so a `failed` resolution is refused unless the provider
// says the payout failed, or it has no record of it AND our records prove it never took it (no
// accepted submission, none with an unknown outcome, no callback, no status query that found it)
// and no submission job can still reach it. A provider 404 alone proves nothing. The override stays,
// audited. The orders are driven to manual through the real path, then resolved through the service
// and the HTTP route; a second, empty provider stands in for one whose 404 is wrong.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import { sql } from 'slonik';
import { z } from 'zod';
import { createManualReview, failedResolutionRefused, type ManualReview } from '../app/admin/manualReview.ts';
import { postLedgerEvents } from '../app/ledger/ledgerPosting.ts';
import { createPspHttpAdapter } from '../app/gateway/pspHttpAdapter.ts';
import type { PspAdapter } from '../app/gateway/pspAdapter.ts';
import { createPspSimulator } from '../app/gateway/simulator/pspSimulator.ts';
import { accountMinor, placeMany, placeWithdrawal, type PlacedOrder } from './helpers/asyncChecks.ts';
import { call } from './helpers/http.ts';
import { waitForQuiescence } from './helpers/quiescence.ts';
import { startTestSystem, TEST_SECRETS, type TestSystem } from './helpers/system.ts';

let system: TestSystem;
let emptySim: ReturnType<typeof createPspSimulator>;
/** a provider that has no record of anything: its 404 for a payout the real one took is wrong */
let forgetful: PspAdapter;
let provider: PspAdapter;

test.before(async () => {
  system = await startTestSystem({ worker: true, env: { GATEWAY_SUBMIT_ATTEMPTS_MAX: '2' } });
  emptySim = createPspSimulator({ port: 0, callbackUrl: `${system.url}/withdraw/notify`, webhookSecret: TEST_SECRETS.PSP_WEBHOOK_SECRET });
  const { url } = await emptySim.start();
  forgetful = createPspHttpAdapter({ baseUrl: url, ...system.config.gateway });
  provider = createPspHttpAdapter({ baseUrl: system.simUrl!, ...system.config.gateway });
});
test.after.always(async () => {
  await forgetful?.close();
  await provider?.close();
  await emptySim?.stop();
  await system?.stop();
});

const review = (psp: PspAdapter): ManualReview => createManualReview({ db: system.db.databases.balance, psp });
const resolveFailed = (psp: PspAdapter, order: PlacedOrder, override = false) =>
  review(psp).resolve({ orderId: order.orderId, outcome: 'failed', reason: 'bank says no', override, operator: 'alice', requestId: null });

/** as recovery does after the provider could not confirm the payout: processing → manual */
async function toManual(order: PlacedOrder, from: 'processing' | 'init') {
  const row = await system.db.databases.balance.one(sql.type(z.object({ outcome: z.string() }))`
    select outcome from withdraw_transition(${order.transactionId}, array[${from}], 'manual', 'reconciler', 'test',
                                            'the provider could not confirm the payout')`);
  if (row.outcome !== 'changed') throw new Error(`to manual: ${row.outcome}`);
}

async function statusOf(order: PlacedOrder): Promise<string> {
  return system.db.databases.balance.oneFirst(sql.type(z.object({ status: z.string() }))`
    select status from withdraw_orders where id = ${order.orderId}`);
}

async function audits(order: PlacedOrder) {
  return system.db.databases.balance.any(sql.type(z.object({ details: z.record(z.unknown()) }))`
    select details from admin_audit_log where subject = ${`order:${order.orderId}`} order by id`);
}

test.serial(
  'when the provider accepted a payout and a provider now answers 404, then resolving failed is refused, the money stays reserved, and only an override releases it, audited',
  async (t) => {
    const { balance, ledger } = system.db.databases;
    system.sim!.setKnobs({ dropCallbackRate: 1, hangRate: 0, failAfterAcceptRate: 0 });
    const { accountId, orders } = await placeMany(system, { userId: 'guard-accepted', count: 1, amountMinor: 1_000n, fundMinor: 5_000n });
    const order = orders[0]!;
    await system.waitForOrders([order.orderId], ['processing']);
    await toManual(order, 'processing');

    const refused = await resolveFailed(forgetful, order);
    t.like(refused, { kind: 'records_disagree', reasons: ['accepted_attempt'], provider: { status: 'not_found' } });
    t.is(await statusOf(order), 'manual');
    t.like(await accountMinor(balance, accountId), { balance: 5_000n, available: 4_000n, reserved: 1_000n });
    t.deepEqual(await audits(order), []);

    const reply = await call(system.url, 'POST', `/admin/withdraws/${order.orderId}/resolve`, {
      token: system.adminToken,
      body: { outcome: 'failed', reason: 'bank says no' },
    });
    // the web process asks the real provider, which reports the payout paid
    t.is(reply.status, 409, reply.text);
    t.is(reply.body.code, 40902);

    const forced = await resolveFailed(forgetful, order, true);
    t.like(forced, { kind: 'resolved', status: 'failed' });
    t.like(await accountMinor(balance, accountId), { balance: 5_000n, available: 5_000n, reserved: 0n });
    t.like((await audits(order))[0]?.details, { outcome: 'failed', override: true, providerStatus: 'not_found' });
    await waitForQuiescence(balance, ledger);
  },
);

test.serial(
  'when every submission timed out and the provider answers 404, then resolving failed is refused: a timeout may have been executed',
  async (t) => {
    system.sim!.setKnobs({ hangRate: 1, dropCallbackRate: 0 });
    const { orders } = await placeMany(system, { userId: 'guard-unknown', count: 1, amountMinor: 700n, fundMinor: 5_000n });
    const order = orders[0]!;
    await system.waitForOrders([order.orderId], ['manual'], 30_000);
    system.sim!.setKnobs({ hangRate: 0 });

    const refused = await resolveFailed(provider, order);
    t.like(refused, { kind: 'records_disagree', reasons: ['unknown_attempt'], provider: { status: 'not_found' } });
    t.like(refused.kind === 'records_disagree' ? refused.evidence : null, { unknownAttempts: 2, acceptedAttempts: 0 });
    const reply = await call(system.url, 'POST', `/admin/withdraws/${order.orderId}/resolve`, {
      token: system.adminToken,
      body: { outcome: 'failed', reason: 'bank says no' },
    });
    t.is(reply.status, 409, reply.text);
    t.is(reply.body.code, 40902);
    t.regex(reply.body.msg, /unknown_attempt/);
    t.is(await statusOf(order), 'manual');
    t.like(await resolveFailed(provider, order, true), { kind: 'resolved' }, 'the override remains');
  },
);

test.serial(
  'when nothing was ever submitted but a submission job is still queued, then resolving failed is refused until no submission can land, and then it is allowed',
  async (t) => {
    const { balance, ledger } = system.db.databases;
    // no worker from here on: nothing submits this order but the jobs the test puts there
    await system.worker!.stop();
    const accountId = await system.fundedAccount('guard-queued', '20.00');
    const order = await placeWithdrawal(system, { userId: 'guard-queued', accountId, amountMinor: 900n });
    await postLedgerEvents(ledger, [
      {
        outboxId: 1,
        topic: 'withdraw.created',
        transactionId: order.transactionId,
        payload: { transactionId: order.transactionId, accountId, amountMinor: '900', currency: 'USD' },
      },
    ]);
    await toManual(order, 'init');
    await balance.query(sql.unsafe`
      select graphile_worker.add_job('gateway__submit', json_build_object('transactionId', ${order.transactionId}::text),
                                     run_at := now() + interval '1 hour', job_key := ${`gateway-submit:${order.transactionId}`})`);
    t.like(await resolveFailed(provider, order), { kind: 'records_disagree', reasons: ['submission_pending'] });
    // in a batch job too
    await balance.query(sql.unsafe`delete from graphile_worker._private_jobs where key = ${`gateway-submit:${order.transactionId}`}`);
    await balance.query(sql.unsafe`
      select graphile_worker.add_job('gateway__submit_batch',
        json_build_object('submits', json_build_array(json_build_object('transactionId', ${order.transactionId}::text))),
        run_at := now() + interval '1 hour')`);
    t.like(await resolveFailed(provider, order), { kind: 'records_disagree', reasons: ['submission_pending'] });
    await balance.query(sql.unsafe`
      delete from graphile_worker._private_jobs j using graphile_worker._private_tasks k
       where k.id = j.task_id and k.identifier = 'gateway__submit_batch'`);

    const resolved = await resolveFailed(provider, order);
    t.like(resolved, { kind: 'resolved', status: 'failed', provider: { status: 'not_found' } }, 'never submitted, nothing left to submit');
    t.like(await accountMinor(balance, accountId), { available: 2_000n, reserved: 0n });
  },
);

test.serial('when the provider itself reports the payout failed, then resolving failed is allowed whatever was submitted', async (t) => {
  t.is(failedResolutionRefused({ status: 'failed', reason: 'failed', detail: {} }, evidence({ acceptedAttempts: 1, callbacks: 1 })), null);
  t.is(failedResolutionRefused({ status: 'not_found', reason: 'x', detail: {} }, evidence({})), null);
  t.is(failedResolutionRefused({ status: 'not_found', reason: 'x', detail: {} }, evidence({ providerReported: 1 })), 'records_disagree');
  t.is(failedResolutionRefused({ status: 'not_found', reason: 'x', detail: {} }, evidence({ callbacks: 1 })), 'records_disagree');
  t.is(failedResolutionRefused({ status: 'pending', reason: 'x', detail: {} }, evidence({})), 'provider_disagrees');
  t.is(failedResolutionRefused({ status: 'unknown', reason: 'x', detail: {} }, evidence({})), 'provider_unavailable');
});

function evidence(over: Partial<Record<string, number>>) {
  return {
    acceptedAttempts: 0,
    unknownAttempts: 0,
    rejectedAttempts: 0,
    callbacks: 0,
    providerReported: 0,
    submissionsPending: 0,
    ...over,
  };
}

test('when a 404 does not come from the provider’s payout record, then the adapter says unknown, not "not found"', async (t) => {
  const proxy = createServer((_req, res) => {
    res.writeHead(404, { 'content-type': 'text/html' });
    res.end('<html>Not Found</html>');
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const adapter = createPspHttpAdapter({ baseUrl: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`, ...system.config.gateway });
  try {
    t.like(await adapter.getPayout('0190a0d2-5f0e-7c3a-8b1e-1234567890ab'), { kind: 'unknown' });
    t.deepEqual(await forgetful.getPayout('0190a0d2-5f0e-7c3a-8b1e-1234567890ab'), { kind: 'not_found' });
  } finally {
    await adapter.close();
    await new Promise((resolve) => proxy.close(resolve));
  }
});
