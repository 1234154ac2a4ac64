// The console's own actions and reads, each judged by its effect in the databases and the audit
// trail, with the refusals of every role that may not: resolving manual orders (the service's
// guard), job retry, cancel and reschedule, breaks, and the anonymous requests that get nothing.
import test from 'ava';
import { sql } from 'slonik';
import { z } from 'zod';
import { cookieOf, signIn } from './helpers/consoleClient.ts';
import { accountMoney, auditWhere, crew, failedJob, manualOrder, orderStatus, type Crew } from './helpers/consoleFixtures.ts';
import { call } from './helpers/http.ts';
import { closedPort } from './helpers/recoveryHarness.ts';
import { startTestSystem, testConfig, type TestSystem } from './helpers/system.ts';
import { startWebProcess } from '../app/webApp.ts';

let system: TestSystem;
let ops: Crew;

test.before(async () => {
  system = await startTestSystem({ worker: true });
  await system.worker!.stop();
  ops = await crew(system);
});
test.after.always(async () => {
  await system?.stop();
});

const jobRow = (id: string) =>
  system.db.databases.balance.one(sql.type(
    z.object({ attempts: z.number(), maxAttempts: z.number(), lastError: z.string().nullable(), runAt: z.number() }),
  )`
    select attempts, max_attempts as "maxAttempts", last_error as "lastError", run_at as "runAt" from graphile_worker._private_jobs where id = ${id}`);

test.serial(
  'when an operator resolves a manual order the provider never saw, then it is released once and audited under their name',
  async (t) => {
    const order = await manualOrder(system, 'ca-resolve', false);
    const body = { outcome: 'failed', reason: 'provider has no such payout' };
    for (const who of [ops.vera]) {
      const refused = await who.call('POST', `/admin/console/api/orders/${order.orderId}/resolve`, { body });
      t.is(refused.status, 403, 'a viewer may not resolve');
    }
    t.is(await orderStatus(system, order.orderId), 'manual');
    const resolved = await ops.otto.call('POST', `/admin/console/api/orders/${order.orderId}/resolve`, { body });
    t.is(resolved.status, 200, resolved.text);
    t.like(resolved.body, { msg: 'resolved', data: { status: 'failed', operator: 'otto', providerStatus: 'not_found' } });
    t.like(await accountMoney(system, order.accountId), { balance: 10_000n, available: 10_000n, reserved: 0n });
    const again = await ops.olga.call('POST', `/admin/console/api/orders/${order.orderId}/resolve`, { body });
    t.like(again.body, { msg: 'already resolved' });
    const contrary = await ops.olga.call('POST', `/admin/console/api/orders/${order.orderId}/resolve`, {
      body: { outcome: 'success', reason: 'changed my mind' },
    });
    t.is(contrary.status, 422);
    t.like(await accountMoney(system, order.accountId), { available: 10_000n }, 'released exactly once');
    const audit = await auditWhere(system, `order:${order.orderId}`);
    t.deepEqual(
      audit.map((row) => [row.operator, row.action, row.details.outcome]),
      [['otto', 'withdraw.resolve', 'failed']],
    );
    const history = await system.db.databases.balance.oneFirst(sql.type(z.object({ actorId: z.string() }))`
    select actor_id as "actorId" from withdraw_status_history where order_id = ${order.orderId} and to_status = 'failed'`);
    t.is(history, 'otto');
  },
);

test.serial("when the manual queue is read, then each order comes with its evidence and the provider's current answer", async (t) => {
  const paid = await manualOrder(system, 'ca-queue-paid', true);
  const unseen = await manualOrder(system, 'ca-queue-unseen', false);
  const queue = await ops.vera.call('GET', '/admin/console/api/review');
  t.is(queue.status, 200, queue.text);
  const byId = new Map(queue.body.data.orders.map((o: { withdrawOrderId: string }) => [o.withdrawOrderId, o]));
  t.like(byId.get(paid.orderId), {
    status: 'manual',
    provider: { status: 'paid' },
    evidence: { history: [{ to: 'init' }, { to: 'manual' }] },
  });
  t.like(byId.get(unseen.orderId), { provider: { status: 'not_found' } });
  t.true(queue.body.data.total >= 2);
  // resolving success needs no override: the provider paid it
  const resolved = await ops.otto.call('POST', `/admin/console/api/orders/${paid.orderId}/resolve`, {
    body: { outcome: 'success', reason: 'provider says paid' },
  });
  t.is(resolved.status, 200, resolved.text);
  t.like(await accountMoney(system, paid.accountId), { balance: 7_500n, reserved: 0n });
});

test.serial('when the provider cannot be asked, then resolving failed is refused with 503 and the money stays held', async (t) => {
  const order = await manualOrder(system, 'ca-unreachable', false);
  // a second web process on the same databases whose provider does not answer: sessions live in
  // the database, so the operator's cookie works there too
  const config = testConfig(system.db, { PSP_BASE_URL: `http://127.0.0.1:${await closedPort()}`, GATEWAY_CONNECT_TIMEOUT_MS: '200' });
  const web = await startWebProcess({ config, databases: system.db.databases, balanceUrl: system.db.balanceUrl, logger: system.logger });
  try {
    const refused = await call(web.url, 'POST', `/admin/console/api/orders/${order.orderId}/resolve`, {
      headers: { cookie: ops.otto.cookie, 'x-csrf-token': ops.otto.csrfToken },
      body: { outcome: 'failed', reason: 'looks dead' },
    });
    t.is(refused.status, 503, refused.text);
    t.like(refused.body.data, { providerStatus: 'unknown', overridable: true });
  } finally {
    await web.close(1_000);
  }
  t.is(await orderStatus(system, order.orderId), 'manual');
  t.like(await accountMoney(system, order.accountId), { reserved: 2_500n });
});

test.serial(
  "when an operator retries, cancels or reschedules a job, then graphile-worker's functions do it and each is audited; a viewer may not",
  async (t) => {
    const retried = await failedJob(system, { transactionId: '01a2b3c4-0000-7000-8000-000000000001' });
    const cancelled = await failedJob(system);
    const moved = await failedJob(system);
    for (const [path, body] of [
      [`/admin/console/api/jobs/${retried}/retry`, undefined],
      [`/admin/console/api/jobs/${cancelled}/cancel`, { reason: 'superseded' }],
      [`/admin/console/api/jobs/${moved}/reschedule`, { runAt: new Date(Date.now() + 3_600_000).toISOString() }],
    ] as const) {
      t.is((await ops.vera.call('POST', path, { body })).status, 403, `viewer: ${path}`);
    }
    t.like(await jobRow(retried), { attempts: 3 }, 'the refusals changed nothing');

    const retry = await ops.otto.call('POST', `/admin/console/api/jobs/${retried}/retry`);
    t.is(retry.status, 200, retry.text);
    t.like(retry.body.data, { state: 'queued', attempts: 0, transactionIds: ['01a2b3c4-0000-7000-8000-000000000001'] });
    t.like(await jobRow(retried), { attempts: 0 });

    // a cancelled job is failed for good, with the reason as its last error
    await system.db.databases.balance.query(sql.unsafe`update graphile_worker._private_jobs set attempts = 1 where id = ${cancelled}`);
    const cancel = await ops.olga.call('POST', `/admin/console/api/jobs/${cancelled}/cancel`, {
      body: { reason: 'superseded by a manual payout' },
    });
    t.is(cancel.status, 200, cancel.text);
    t.like(await jobRow(cancelled), { attempts: 3, lastError: 'cancelled by olga: superseded by a manual payout' });
    t.is((await ops.olga.call('POST', `/admin/console/api/jobs/${cancelled}/cancel`, { body: {} })).status, 400, 'a cancel says why');

    const runAt = new Date(Date.now() + 3_600_000);
    const reschedule = await ops.otto.call('POST', `/admin/console/api/jobs/${moved}/reschedule`, { body: { runAt: runAt.toISOString() } });
    t.is(reschedule.status, 200, reschedule.text);
    t.is((await jobRow(moved)).runAt, runAt.getTime());
    t.like(await jobRow(moved), { attempts: 3 }, 'a reschedule keeps the attempts');
    const tooFar = await ops.otto.call('POST', `/admin/console/api/jobs/${moved}/reschedule`, {
      body: { runAt: new Date(Date.now() + 40 * 86_400_000).toISOString() },
    });
    t.is(tooFar.status, 400);

    t.deepEqual(
      (await auditWhere(system, `job:${retried}`)).map((r) => [r.operator, r.action]),
      [['otto', 'job.retry']],
    );
    t.like((await auditWhere(system, `job:${cancelled}`))[0], {
      operator: 'olga',
      action: 'job.cancel',
      details: { reason: 'superseded by a manual payout' },
    });
    t.like((await auditWhere(system, `job:${moved}`))[0], { operator: 'otto', action: 'job.reschedule' });
  },
);

test.serial('when a job is locked by a running worker, then retry and cancel change nothing and say so', async (t) => {
  const id = await failedJob(system);
  await system.db.databases.balance.query(sql.unsafe`
    update graphile_worker._private_jobs set locked_at = now(), locked_by = 'worker-alive', attempts = 1 where id = ${id}`);
  for (const [path, body] of [
    [`/admin/console/api/jobs/${id}/retry`, undefined],
    [`/admin/console/api/jobs/${id}/cancel`, { reason: 'stop it' }],
  ] as const) {
    const reply = await ops.otto.call('POST', path, { body });
    t.is(reply.status, 409, path);
  }
  t.like(await jobRow(id), { attempts: 1 });
  t.deepEqual(await auditWhere(system, `job:${id}`), []);
  t.is((await ops.otto.call('POST', '/admin/console/api/jobs/99999999/retry')).status, 404);
});

test.serial(
  'when jobs are listed, then they page by id without overlap, filter by task and state, and name the orders in their payloads',
  async (t) => {
    const db = system.db.databases.balance;
    await db.query(sql.unsafe`delete from graphile_worker._private_jobs`);
    const batch = await failedJob(
      system,
      { submits: [{ transactionId: '01a2b3c4-0000-7000-8000-00000000000a' }, { transactionId: '01a2b3c4-0000-7000-8000-00000000000b' }] },
      'gateway__submit_batch',
    );
    await db.query(sql.unsafe`
    select graphile_worker.add_job('test__queued', json_build_object('n', n)) from generate_series(1, 120) n`);
    const seen: string[] = [];
    let before: string | null = null;
    for (let page = 0; page < 10; page += 1) {
      const reply = await ops.vera.call('GET', `/admin/console/api/jobs?task=test__queued&limit=50${before ? `&before=${before}` : ''}`);
      t.is(reply.status, 200);
      seen.push(...reply.body.data.jobs.map((j: { jobId: string }) => j.jobId));
      before = reply.body.data.nextBefore;
      if (!before) break;
    }
    t.is(seen.length, 120);
    t.is(new Set(seen).size, 120, 'no job on two pages');
    t.deepEqual(
      [...seen].sort((a, b) => Number(BigInt(b) - BigInt(a))),
      seen,
      'newest first',
    );
    const failed = await ops.vera.call('GET', '/admin/console/api/jobs?state=failed');
    t.deepEqual(
      failed.body.data.jobs.map((j: { jobId: string }) => j.jobId),
      [batch],
    );
    t.like(failed.body.data.jobs[0], {
      task: 'gateway__submit_batch',
      state: 'failed',
      lastError: 'boom: provider said 500',
      transactionCount: 2,
      transactionIds: ['01a2b3c4-0000-7000-8000-00000000000a', '01a2b3c4-0000-7000-8000-00000000000b'],
    });
    t.true(failed.body.data.tasks.includes('gateway__submit_batch'));
    t.is((await ops.vera.call('GET', '/admin/console/api/jobs?state=exploded')).status, 400);
  },
);

test('when the cron schedule is read, then every crontab entry has its pattern and next run', async (t) => {
  const reply = await ops.vera.call('GET', '/admin/console/api/cron');
  t.is(reply.status, 200);
  const reconcile = reply.body.data.cron.find((c: { identifier: string }) => c.identifier === 'reconcile_run');
  t.like(reconcile, { task: 'reconcile__run', pattern: '*/5 * * * *' });
  t.is(new Date(reconcile.nextRunAt).getUTCMinutes() % 5, 0);
  t.true(Date.parse(reconcile.nextRunAt) > Date.now());
});

test.serial(
  'when breaks are listed by category and age and one is resolved with a note, then it closes once, audited; a viewer may not',
  async (t) => {
    const db = system.db.databases.balance;
    const record = (category: string, subject: string) =>
      db.oneFirst(sql.type(z.object({ id: z.bigint() }))`
      select reconciliation_record_break(${category}, ${subject}, null, null, null, 'USD', '1.00', '2.00', '{}'::jsonb) as id`);
    const fresh = (await record('ledger_balance_mismatch', 'account:fresh')).toString();
    const old = (await record('ledger_balance_mismatch', 'account:old')).toString();
    await record('callback_contradicts_final', 'order:x');
    await db.query(sql.unsafe`update reconciliation_breaks set first_seen_at = now() - interval '3 days' where id = ${old}`);

    const byCategory = await ops.vera.call('GET', '/admin/console/api/breaks?category=ledger_balance_mismatch');
    t.deepEqual(
      byCategory.body.data.breaks.map((b: { breakId: string }) => b.breakId),
      [old, fresh],
      'oldest first',
    );
    const byAge = await ops.vera.call('GET', '/admin/console/api/breaks?age=1d-7d');
    t.deepEqual(
      byAge.body.data.breaks.map((b: { breakId: string }) => b.breakId),
      [old],
    );
    t.true(byCategory.body.data.categories.includes('callback_contradicts_final'));

    t.is((await ops.vera.call('POST', `/admin/console/api/breaks/${old}/resolve`, { body: { note: 'viewer' } })).status, 403);
    const resolved = await ops.otto.call('POST', `/admin/console/api/breaks/${old}/resolve`, { body: { note: 'journal 812 corrects it' } });
    t.is(resolved.status, 200, resolved.text);
    const row = await db.one(
      sql.type(z.object({ resolution: z.string().nullable() }))`select resolution from reconciliation_breaks where id = ${old}`,
    );
    t.is(row.resolution, 'otto: journal 812 corrects it');
    t.is((await ops.otto.call('POST', `/admin/console/api/breaks/${old}/resolve`, { body: { note: 'again' } })).status, 404);
    t.deepEqual(
      (await auditWhere(system, `break:${old}`)).map((r) => [r.operator, r.action, r.details.resolution]),
      [['otto', 'break.resolve', 'journal 812 corrects it']],
    );
    const resolvedList = await ops.vera.call('GET', '/admin/console/api/breaks?state=resolved');
    t.true(resolvedList.body.data.breaks.some((b: { breakId: string }) => b.breakId === old));
  },
);

test('when the console is asked without a session, then every JSON endpoint answers 401 with no data, and the page sends to sign-in', async (t) => {
  const paths = [
    ['GET', '/admin/console/api/overview'],
    ['GET', '/admin/console/api/orders'],
    ['GET', '/admin/console/api/orders/01a2b3c4-0000-7000-8000-000000000001'],
    ['GET', '/admin/console/api/review'],
    ['GET', '/admin/console/api/jobs'],
    ['GET', '/admin/console/api/cron'],
    ['GET', '/admin/console/api/breaks'],
    ['GET', '/admin/console/api/approvals'],
    ['GET', '/admin/console/api/audit'],
    ['GET', '/admin/console/api/outbox'],
    ['GET', '/admin/console/api/callbacks'],
    ['GET', '/admin/console/api/provider-calls'],
    ['GET', '/admin/console/api/accounts?userId=x'],
    ['POST', '/admin/console/api/jobs/1/retry'],
    ['POST', '/admin/console/api/jobs/retry'],
    ['POST', '/admin/console/api/breaks/1/resolve'],
    ['POST', '/admin/console/api/approvals/1/approve'],
    ['POST', '/admin/console/api/orders/01a2b3c4-0000-7000-8000-000000000001/resolve'],
  ] as const;
  for (const [method, path] of paths) {
    const reply = await call(system.url, method, path, { token: system.adminToken, body: method === 'POST' ? {} : undefined });
    t.is(reply.status, 401, `${method} ${path}`);
    t.is(reply.body.data, null);
  }
  const page = await fetch(`${system.url}/admin/`, { redirect: 'manual' });
  t.is(page.status, 303);
  t.is(page.headers.get('location'), '/admin/login');
  t.false((await page.text()).includes('console.js'), 'the console page is not served to anyone');
});

test('when a signed-in operator opens the console, then it is served with a CSP that allows only its own scripts, none inline', async (t) => {
  const client = await signIn(system.url, 'vera');
  const page = await fetch(`${system.url}/admin/`, { headers: { cookie: client.cookie } });
  t.is(page.status, 200);
  const html = await page.text();
  const csp = page.headers.get('content-security-policy') ?? '';
  t.regex(csp, /script-src 'self'(;|$)/);
  t.regex(csp, /default-src 'none'/);
  t.notRegex(csp, /unsafe-inline|unsafe-eval/);
  t.notRegex(html, /<script>(?!<)|<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script');
  t.notRegex(html, /\son[a-z]+=/i, 'no inline event handler');
  t.notRegex(html, /style=/, 'no inline style');
  const login = await fetch(`${system.url}/admin/login`);
  t.is(login.status, 200);
  t.regex(login.headers.get('content-security-policy') ?? '', /script-src 'self'/);
  for (const [asset, type] of [
    ['console.js', /javascript/],
    ['uPlot.iife.min.js', /javascript/],
    ['uPlot.min.css', /css/],
    ['console.css', /css/],
  ] as const) {
    const reply = await fetch(`${system.url}/admin/console/assets/${asset}`);
    t.is(reply.status, 200, asset);
    t.regex(reply.headers.get('content-type') ?? '', type);
  }
  t.is((await fetch(`${system.url}/admin/console/assets/../../config.ts`)).status, 404);
  t.is(cookieOf(await call(system.url, 'GET', '/admin/login')), null, 'the sign-in page sets no cookie');
});

test.serial(
  'when orders are searched, then order id, transaction id, account id and user id all find them, paged without overlap',
  async (t) => {
    const accountId = await system.fundedAccount('ca-search', '100.00');
    const orders = [];
    for (const i of [1, 2, 3]) orders.push(await manualOrder(system, 'ca-search', false, `${i}.00`, accountId));
    const [first] = orders as [(typeof orders)[number]];
    for (const q of [first.orderId, first.transactionId.toUpperCase()]) {
      const reply = await ops.vera.call('GET', `/admin/console/api/orders?q=${q}`);
      t.deepEqual(
        reply.body.data.orders.map((o: { withdrawOrderId: string }) => o.withdrawOrderId),
        [first.orderId],
        q,
      );
    }
    const byAccount = await ops.vera.call('GET', `/admin/console/api/orders?q=${first.accountId}`);
    t.true(byAccount.body.data.orders.some((o: { withdrawOrderId: string }) => o.withdrawOrderId === first.orderId));
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const reply: any = await ops.vera.call('GET', `/admin/console/api/orders?q=ca-search&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      seen.push(...reply.body.data.orders.map((o: { withdrawOrderId: string }) => o.withdrawOrderId));
      cursor = reply.body.data.nextCursor;
    } while (cursor);
    t.deepEqual([...seen].sort(), orders.map((o) => o.orderId).sort());
    t.is(seen.length, 3);
    t.is((await ops.vera.call('GET', '/admin/console/api/orders?cursor=garbage')).status, 400);
    const detail = await ops.vera.call('GET', `/admin/console/api/orders/${first.orderId}`);
    t.is(detail.status, 200);
    t.like(detail.body.data, {
      order: { withdrawOrderId: first.orderId, status: 'manual' },
      reservation: { status: 'held', amount: '1.00' },
    });
  },
);

test.serial('when the overview is read, then its numbers match the databases and each chart has its series', async (t) => {
  const paid = await manualOrder(system, 'ca-overview', true);
  const reply = await ops.vera.call('GET', '/admin/console/api/overview');
  t.is(reply.status, 200, reply.text);
  const o = reply.body.data;
  const manual = await system.db.databases.balance.oneFirst(sql.type(z.object({ n: z.number() }))`
    select count(*)::int as n from withdraw_orders where status = 'manual'`);
  t.is(o.openOrders.manual, manual);
  t.true(o.ordersPerHour.some((row: { status: string; count: number }) => row.status === 'manual' && row.count >= 1));
  t.true(o.throughputPerMinute.some((row: { series: string }) => row.series === 'accepted'));
  t.like(o.outbox.balance, { unrelayed: await unrelayed() });
  t.is(typeof o.provider.errorRate, 'number');
  t.true(Array.isArray(o.workers));
  t.is(typeof o.pendingApprovals, 'number');
  t.truthy(paid);
});

function unrelayed() {
  return system.db.databases.balance.oneFirst(
    sql.type(z.object({ n: z.number() }))`select count(*)::int as n from outbox where relayed_at is null`,
  );
}
