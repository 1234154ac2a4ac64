// The gateway's two guards on money leaving: the provider's answer is classified into a closed set
// (only a 2xx is accepted, only a 4xx that says it is definitive is rejected, anything else is
// unknown and never releases money), and no provider call is made before the ledger hold is recorded.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import fc from 'fast-check';
import { createGatewayService, HoldNotRecordedError } from '../app/gateway/gatewayService.ts';
import type { PayoutRequest, PspAdapter } from '../app/gateway/pspAdapter.ts';
import { classifySubmit } from '../app/gateway/pspHttpAdapter.ts';
import { postLedgerEvents } from '../app/ledger/ledgerPosting.ts';
import { createLogger } from '../app/logger.ts';
import { allInvariants } from '../reconcile/invariants.ts';
import {
  accountMinor,
  historyOf,
  journalKinds,
  journalKindsOf,
  ordersById,
  placeMany,
  placeWithdrawal,
  submitAttempts,
  type PlacedOrder,
} from './helpers/asyncChecks.ts';
import { waitForQuiescence } from './helpers/quiescence.ts';
import { FAST_ASYNC_ENV, startTestSystem, type TestSystem } from './helpers/system.ts';

const SUBMIT_ATTEMPTS_MAX = 2;
const logger = createLogger({ level: 'silent', name: 'test-gateway' });

/** web only: orders stay init and nothing posts their holds unless the test does */
let system: TestSystem;
test.before(async () => {
  system = await startTestSystem({ env: { ...FAST_ASYNC_ENV, GATEWAY_SUBMIT_ATTEMPTS_MAX: String(SUBMIT_ATTEMPTS_MAX) } });
});
test.after.always(async () => {
  await system?.stop();
});

// ---------------------------------------------------------------------------------------------
// classifySubmit

test('when the provider answers 2xx, then the payout is accepted; a definitive 4xx is rejected with its code', (t) => {
  for (const status of [200, 201, 202, 204, 299]) {
    t.deepEqual(classifySubmit(status, { id: 'p-1' }), { kind: 'accepted', httpStatus: status, detail: { id: 'p-1' } });
  }
  const rejected = (body: Record<string, unknown>) => classifySubmit(422, { ...body, definitive: true });
  t.like(rejected({ error: { code: 'payout_rejected', reason: 'account_closed' } }), {
    kind: 'rejected',
    httpStatus: 422,
    code: 'account_closed',
  });
  t.like(rejected({ error: { code: 'payout_rejected' } }), { kind: 'rejected', code: 'payout_rejected' });
  t.like(rejected({}), { kind: 'rejected', code: 'provider_rejected' });
  t.like(classifySubmit(400, { definitive: true }), { kind: 'rejected', httpStatus: 400 });
});

test('when a 4xx does not say it is definitive, or the answer is a 5xx or anything else, then the outcome is unknown', (t) => {
  const notDefinitive = [{}, { definitive: false }, { definitive: 'true' }, { definitive: 1 }, { error: { code: 'invalid_destination' } }];
  for (const status of [400, 401, 403, 404, 409, 422, 429, 499]) {
    for (const body of notDefinitive) {
      t.deepEqual(
        classifySubmit(status, body),
        { kind: 'unknown', httpStatus: status, reason: `HTTP ${status}`, detail: body },
        JSON.stringify([status, body]),
      );
    }
  }
  // "definitive" only counts on a 4xx: a 5xx, a redirect or a 1xx may hide an executed payout
  for (const status of [100, 199, 300, 302, 500, 502, 503, 504, 599]) {
    t.like(classifySubmit(status, { definitive: true }), { kind: 'unknown', httpStatus: status }, String(status));
  }
  const run = fc.check(
    fc.property(
      fc.integer({ min: 100, max: 599 }),
      fc.constantFrom<unknown>(true, false, 'true', 1, null, undefined),
      (status, definitive) => {
        const kind = classifySubmit(status, { definitive }).kind;
        const expected =
          status >= 200 && status < 300 ? 'accepted' : status >= 400 && status < 500 && definitive === true ? 'rejected' : 'unknown';
        return kind === expected;
      },
    ),
    { numRuns: 500 },
  );
  t.false(run.failed, fc.defaultReportMessage(run));
});

test.serial(
  'when the provider answers a 4xx without the definitive marker, then the order is never failed: its money stays reserved until it ends manual',
  async (t) => {
    const { balance, ledger } = system.db.databases;
    const provider = await fakeProvider(422, { error: { code: 'invalid_destination', reason: 'account_closed' } });
    const worker = await system.startWorker({ pspBaseUrl: provider.url, cronItems: [] });
    try {
      const { accountId, orders } = await placeMany(system, { userId: 'gw-4xx', count: 3, amountMinor: 1_000n, fundMinor: 10_000n });
      const ids = orders.map((o) => o.orderId);
      const statuses = await system.waitForOrders(ids, ['manual', 'failed', 'success']);
      await waitForQuiescence(balance, ledger);
      t.deepEqual(
        ids.map((id) => statuses.get(id)),
        ['manual', 'manual', 'manual'],
      );
      // nothing released: every order still holds its amount, and no hold was reversed
      t.deepEqual(await accountMinor(balance, accountId), { balance: 10_000n, available: 7_000n, reserved: 3_000n });
      const journals = await journalKindsOf(
        ledger,
        orders.map((o) => o.transactionId),
      );
      const attempts = await submitAttempts(
        balance,
        orders.map((o) => o.transactionId),
      );
      for (const order of orders) {
        t.deepEqual(journals.get(order.transactionId), ['hold']);
        t.deepEqual(
          (await historyOf(balance, order.orderId)).map((h) => h.toStatus),
          ['init', 'manual'],
        );
        t.deepEqual(
          attempts.filter((a) => a.transactionId === order.transactionId).map((a) => [a.result, a.httpStatus, a.detail.reason]),
          Array(SUBMIT_ATTEMPTS_MAX).fill(['unknown', 422, 'HTTP 422']),
        );
        // retried under the same idempotency key, SUBMIT_ATTEMPTS_MAX times
        t.deepEqual(
          provider.requests.filter((r) => r.reference === order.transactionId).map((r) => r.idempotencyKey),
          Array(SUBMIT_ATTEMPTS_MAX).fill(order.transactionId),
        );
      }
      t.deepEqual(await allInvariants(balance, ledger), []);
    } finally {
      await worker.stop();
      await provider.close();
    }
  },
);

/** A provider that answers every POST /payouts with `status` and `body`, and records what it was sent. */
async function fakeProvider(status: number, body: Record<string, unknown>) {
  const requests: Array<{ reference: string; idempotencyKey: string | undefined }> = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/payouts') {
        const payout = JSON.parse(Buffer.concat(chunks).toString('utf8')) as PayoutRequest;
        const key = req.headers['idempotency-key'];
        requests.push({ reference: payout.reference, idempotencyKey: typeof key === 'string' ? key : undefined });
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      } else {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{}');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

// ---------------------------------------------------------------------------------------------
// write last, read first: no recorded hold, no provider call

/** A provider adapter that accepts everything and records every payout it is asked for. */
function countingProvider() {
  const references: string[] = [];
  const psp: PspAdapter = {
    submitPayout: async (request) => {
      references.push(request.reference);
      return { kind: 'accepted', httpStatus: 202, detail: {} };
    },
    getPayout: async () => ({ kind: 'not_found' }),
    getSettlementStatement: () => Promise.reject(new Error('no statements in this test')),
    close: async () => {},
  };
  return { psp, references };
}

async function postHold(order: PlacedOrder): Promise<void> {
  const { transactionId, accountId, amountMinor } = order;
  const [row] = await postLedgerEvents(system.db.databases.ledger, [
    {
      outboxId: 1,
      topic: 'withdraw.created',
      transactionId,
      payload: { transactionId, accountId, amountMinor: amountMinor.toString(), currency: 'USD' },
    },
  ]);
  if (row?.kind !== 'hold' || !row.posted) throw new Error(`hold of ${transactionId} not posted: ${JSON.stringify(row)}`);
}

test.serial(
  'when the ledger hold of an order is not recorded, then neither submit nor submitBatch calls the provider for it',
  async (t) => {
    const { balance, ledger } = system.db.databases;
    const { psp, references } = countingProvider();
    const gateway = createGatewayService({ balance, ledger, psp, settings: system.config.gateway, logger });
    const accountId = await system.fundedAccount('gw-nohold', '100.00');
    const place = () => placeWithdrawal(system, { userId: 'gw-nohold', accountId, amountMinor: 500n });
    const [unheld, heldLater, held] = [await place(), await place(), await place()];
    t.deepEqual(await journalKinds(ledger, unheld.transactionId), [], 'no hold recorded');

    await t.throwsAsync(gateway.submit({ transactionId: unheld.transactionId }), { instanceOf: HoldNotRecordedError });
    await t.throwsAsync(gateway.submitBatch([{ transactionId: unheld.transactionId }, { transactionId: heldLater.transactionId }]), {
      instanceOf: HoldNotRecordedError,
    });
    t.deepEqual(references, [], 'the provider saw no payout request');

    // with the holds recorded the same calls do reach the provider: once per order
    await postHold(heldLater);
    await postHold(held);
    t.is(await gateway.submit({ transactionId: heldLater.transactionId }), 'processing');
    await t.throwsAsync(gateway.submitBatch([{ transactionId: unheld.transactionId }, { transactionId: held.transactionId }]), {
      instanceOf: HoldNotRecordedError,
    });
    t.deepEqual(references, [heldLater.transactionId, held.transactionId], 'only the held orders were sent');

    const rows = await ordersById(balance, [unheld.orderId, heldLater.orderId, held.orderId]);
    t.deepEqual(
      [unheld, heldLater, held].map((o) => rows.get(o.orderId)?.status),
      ['init', 'processing', 'processing'],
    );
    t.deepEqual(await submitAttempts(balance, [unheld.transactionId]), [], 'no attempt recorded for the unheld order');
  },
);
