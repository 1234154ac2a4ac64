// A hanging endpoint never takes what another endpoint needs, pinned for each way it used to (issue
// 13): its requests held every socket of the worker's HTTP pool for their host, so a healthy
// endpoint on the same host queued behind them; and its overlapping rounds took every delivery round
// of the worker (WEBHOOK_JOBS_MAX), so a healthy endpoint's rounds were answered busy until the
// hanging requests timed out. Each state is reached by waiting for it, never by sleeping; the hanging
// requests outlive the test (WEBHOOK_TIMEOUT_MS 60 s), so "while it still hangs" is an ordering,
// not a timing assertion.
import test, { type ExecutionContext } from 'ava';
import pg from 'pg';
import { call } from './helpers/http.ts';
import { startTestSystem, type TestSystem } from './helpers/system.ts';
import { eventually } from './helpers/asyncChecks.ts';
import { startWebhookReceiver, type WebhookReceiver } from './helpers/webhookReceiver.ts';

const FINAL = ['success', 'failed'];

type Setup = Readonly<{
  system: TestSystem;
  balance: pg.Pool;
  register: (receiver: WebhookReceiver, path: string, events: string[]) => Promise<string>;
  placeOrder: (token: string) => Promise<string>;
}>;

/** A system with its own WEBHOOK_* settings; everything it and the receivers hold is released at the end. */
async function setUp(t: ExecutionContext, env: Record<string, string>, receivers: WebhookReceiver[]): Promise<Setup> {
  const system = await startTestSystem({
    worker: true,
    env: { WEBHOOK_RETRY_BASE_MS: '20', WEBHOOK_RETRY_MAX_MS: '200', WEBHOOK_TIMEOUT_MS: '60000', ...env },
  });
  const balance = new pg.Pool({ connectionString: system.db.balanceUrl, max: 2 });
  const endpoints: string[] = [];
  t.teardown(async () => {
    for (const id of endpoints) {
      await call(system.url, 'DELETE', `/admin/webhook-endpoints/${id}`, { token: system.adminToken }).catch(() => {});
    }
    for (const receiver of receivers) receiver.releaseHanging('/hanging');
    try {
      await balance.end();
      await system.stop();
    } finally {
      // closed whatever happened above: a receiver left listening keeps the process alive
      for (const receiver of receivers) await receiver.close();
    }
  });
  return {
    system,
    balance,
    register: async (receiver, path, events) => {
      const reply = await call(system.url, 'POST', '/admin/webhook-endpoints', {
        token: system.adminToken,
        body: { url: receiver.url(path), events },
      });
      if (reply.status !== 201) throw new Error(reply.text);
      receiver.setSecret(path, reply.body.data.secret);
      endpoints.push(reply.body.data.endpointId);
      return reply.body.data.endpointId;
    },
    placeOrder: async (token) => {
      const reply = await system.withdraw(token, { toAccountId: 'bank-1', amount: '1.00' });
      if (reply.status !== 202) throw new Error(reply.text);
      return reply.body.data.withdrawOrderId;
    },
  };
}

/** Every order's processing event and its final one reached `path`. */
function hasEvery(receiver: WebhookReceiver, path: string, statuses: Map<string, string>): boolean {
  const seen = new Set(receiver.events(path).map((e) => `${e.data.withdrawOrderId} ${e.type}`));
  return [...statuses].every(([id, status]) => seen.has(`${id} withdraw.processing`) && seen.has(`${id} withdraw.${status}`));
}

test.serial(
  'when a hanging endpoint holds the requests it may open, then a healthy endpoint on the same host is still sent to',
  async (t) => {
    // one request per endpoint: the old pool had one socket per host, and the hanging endpoint held it
    const receiver = await startWebhookReceiver();
    const { system, register, placeOrder } = await setUp(t, { WEBHOOK_ENDPOINT_CONCURRENCY: '1' }, [receiver]);
    await register(receiver, '/healthy', ['withdraw.processing', 'withdraw.success', 'withdraw.failed']);
    await register(receiver, '/hanging', ['withdraw.processing']);
    receiver.setMode('/hanging', 'hang');
    await system.fundedAccount('iso-alice', '100.00');
    const token = await system.userToken('iso-alice');
    const orders = [await placeOrder(token)];
    await eventually('the hanging endpoint holds a request', async () => receiver.hanging('/hanging') >= 1);
    for (let i = 0; i < 3; i += 1) orders.push(await placeOrder(token));
    const statuses = await system.waitForOrders(orders, FINAL, 30_000);
    await eventually('the healthy endpoint has every event', async () => hasEvery(receiver, '/healthy', statuses), 30_000);
    t.true(receiver.hanging('/hanging') >= 1, 'the hanging endpoint still holds its request');
    t.is(receiver.events('/hanging').length, 0);
    t.is(receiver.badSignatures(), 0);
  },
);

test.serial(
  'when a hanging endpoint has more deliveries than the worker has delivery rounds, then a healthy endpoint still gets its turn',
  async (t) => {
    // two rounds per worker, two requests per endpoint: the old worker gave the hanging endpoint a
    // round per delivery, i.e. both rounds, and answered the healthy one busy until they timed out
    const slow = await startWebhookReceiver();
    const fine = await startWebhookReceiver();
    const { system, balance, register, placeOrder } = await setUp(t, { WEBHOOK_ENDPOINT_CONCURRENCY: '2', WEBHOOK_JOBS_MAX: '2' }, [
      slow,
      fine,
    ]);
    t.is(system.config.webhooks.jobsMax, 2);
    await register(fine, '/healthy', ['withdraw.processing', 'withdraw.success', 'withdraw.failed']);
    // one delivery per order for the hanging endpoint
    const hanging = await register(slow, '/hanging', ['withdraw.processing']);
    slow.setMode('/hanging', 'hang');
    await system.fundedAccount('iso-bob', '100.00');
    const token = await system.userToken('iso-bob');
    const orders = [await placeOrder(token)];
    await eventually('the hanging endpoint holds a request', async () => slow.hanging('/hanging') >= 1);
    orders.push(await placeOrder(token));
    // its second delivery exists, and the round it woke has run: no delivery job of the hanging
    // endpoint is waiting to run (the old worker: that round holds the second request, and the
    // worker's second round; now: it was left to the round already running)
    await eventually('the hanging endpoint’s second round has run', async () => {
      const { rows } = await balance.query<{ ready: boolean }>(
        `select exists (select 1 from webhook_deliveries where endpoint_id = $1::uuid and order_id = $2::uuid)
                and not exists (select 1 from graphile_worker.jobs
                                 where key = 'webhook-deliver:' || $1::text and locked_at is null) as ready`,
        [hanging, orders[1]],
      );
      return rows[0]!.ready;
    });
    for (let i = 0; i < 3; i += 1) orders.push(await placeOrder(token));
    const statuses = await system.waitForOrders(orders, FINAL, 30_000);
    await eventually('the healthy endpoint has every event', async () => hasEvery(fine, '/healthy', statuses), 30_000);
    t.true(slow.hanging('/hanging') >= 1, 'the hanging endpoint still holds its requests');
    t.is(slow.events('/hanging').length, 0);
    const { rows } = await balance.query<{ open: number }>(
      `select count(*)::int as open from webhook_deliveries where endpoint_id = $1 and lease_until > now()`,
      [hanging],
    );
    t.true(rows[0]!.open <= 2, 'at most WEBHOOK_ENDPOINT_CONCURRENCY requests open');
    t.is(fine.badSignatures() + slow.badSignatures(), 0);
  },
);
