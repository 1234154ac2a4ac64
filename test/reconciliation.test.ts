// Three-way reconciliation: a clean system has no breaks; one break of every category, planted
// in the databases and at the provider, is found with its subject, expected and actual; runs
// bump what they see again, resolve what they no longer see, and record themselves. The tests
// build on each other (clean, then planted, then repaired), so they run in order.
import { spawn } from 'node:child_process';
import test from 'ava';
import { sql } from 'slonik';
import { v4 as uuidv4 } from 'uuid';
import { z } from 'zod';
import type { Config } from '../app/config.ts';
import { createPspHttpAdapter } from '../app/gateway/pspHttpAdapter.ts';
import type { PspAdapter } from '../app/gateway/pspAdapter.ts';
import { postLedgerEvents } from '../app/ledger/ledgerPosting.ts';
import { createLogger } from '../app/logger.ts';
import { projectRoot } from '../app/paths.ts';
import { RUN_CATEGORIES, runReconciliation, type Finding, type RunSummary } from '../reconcile/reconcileRun.ts';
import { allInvariants } from '../reconcile/invariants.ts';
import { eventually, placeMany, placeWithdrawal, type PlacedOrder } from './helpers/asyncChecks.ts';
import { call } from './helpers/http.ts';
import { waitForQuiescence } from './helpers/quiescence.ts';
import { recoveryConfig } from './helpers/recoveryHarness.ts';
import { startTestSystem, type TestSystem } from './helpers/system.ts';

let system: TestSystem;
let config: Config;
let psp: PspAdapter;
const logger = createLogger({ level: 'silent', name: 'test-reconcile' });

test.before(async () => {
  // one unknown attempt is enough to send an order to manual
  // no crons: only the tests run reconciliation (the */5 cron would add runs of its own)
  system = await startTestSystem({ worker: true, env: { GATEWAY_SUBMIT_ATTEMPTS_MAX: '1' }, cronItems: [] });
  // an order the provider cannot answer is a break at its first skip here
  config = recoveryConfig(system, { RECONCILE_PROVIDER_UNKNOWN_MAX: '1' });
  const real = createPspHttpAdapter({ baseUrl: system.simUrl!, ...config.gateway });
  // the provider's word, as the test plants it: a payout it still calls pending, one it cannot answer
  psp = {
    submitPayout: real.submitPayout.bind(real),
    getPayout: async (reference) => {
      if (reference === state.providerPending)
        return { kind: 'found', status: 'pending', failureCode: null, detail: { status: 'pending' } };
      if (reference === state.providerSilent) return { kind: 'unknown', reason: 'planted: HTTP 502' };
      return real.getPayout(reference);
    },
    getSettlementStatement: real.getSettlementStatement.bind(real),
    close: () => real.close(),
  };
});
test.after.always(async () => {
  await psp?.close();
  await system?.stop();
});

/** what the tests share: the orders and accounts of the activity, and the planted breaks */
const state = {
  paid: [] as PlacedOrder[],
  failed: [] as PlacedOrder[],
  paidAccountId: '',
  neverSeen: null as PlacedOrder | null,
  paidUnrecorded: null as PlacedOrder | null,
  plant: {} as Record<'i1' | 'i2' | 'i3' | 'wallet', string>,
  expected: [] as Array<Pick<Finding, 'category' | 'subject'> & Partial<Pick<Finding, 'expected' | 'actual'>>>,
  firstRun: null as RunSummary | null,
  /** references the test's provider calls pending, or cannot answer about */
  providerPending: null as string | null,
  providerSilent: null as string | null,
};

const run = () => runReconciliation({ databases: system.db.databases, psp, config, logger, mode: 'full' });
const keyOf = (f: { category: string; subject: string }) => `${f.category} ${f.subject}`;
const ids = (orders: readonly PlacedOrder[]) => orders.map((o) => o.orderId);

const BreakRow = z.object({
  id: z.bigint(),
  category: z.string(),
  subject: z.string(),
  expected: z.string().nullable(),
  actual: z.string().nullable(),
  seenCount: z.number(),
  firstSeenAt: z.number(),
  lastSeenAt: z.number(),
  resolvedAt: z.number().nullable(),
  resolution: z.string().nullable(),
  details: z.record(z.unknown()),
});
async function runBreaks() {
  return system.db.databases.balance.any(sql.type(BreakRow)`
    select id, category, subject, expected, actual, seen_count as "seenCount", first_seen_at as "firstSeenAt",
           last_seen_at as "lastSeenAt", resolved_at as "resolvedAt", resolution, details
      from reconciliation_breaks where category = any(${sql.array([...RUN_CATEGORIES], 'text')}) order by id`);
}

function reconcileCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'reconcile/reconcileMain.ts', ...args], {
      cwd: projectRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: process.env.PATH ?? '',
        NODE_ENV: 'test',
        LOG_LEVEL: 'warn',
        BALANCE_DATABASE_URL: system.db.balanceUrl,
        LEDGER_DATABASE_URL: system.db.ledgerUrl,
        PSP_BASE_URL: system.simUrl!,
        RECONCILE_SETTLE_MS: '0',
      },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

async function openBreakGauge(): Promise<Map<string, number>> {
  const reply = await fetch(`${system.url}/metrics`);
  const text = await reply.text();
  const gauge = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^withdraw_breaks_open\{(.*)\} (\S+)$/.exec(line);
    if (!match) continue;
    const labels = Object.fromEntries([...match[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    gauge.set(`${labels.category} ${labels.age}`, Number(match[2]));
  }
  return gauge;
}

test.serial(
  'when the system is clean after paid, failed and credited activity, then a full run finds no breaks and records itself',
  async (t) => {
    const { balance, ledger } = system.db.databases;
    const sim = system.sim!;
    const paid = await placeMany(system, { userId: 'rc-paid', count: 3, amountMinor: 1_000n, fundMinor: 10_000n });
    state.paid = paid.orders;
    state.paidAccountId = paid.accountId;
    t.is(
      (
        await call(system.url, 'POST', `/admin/accounts/${paid.accountId}/credits`, {
          token: system.adminToken,
          body: { amount: '25.00', transactionId: uuidv4() },
        })
      ).status,
      200,
    );
    await system.waitForOrders(ids(paid.orders), ['success']);

    sim.setKnobs({ rejectRate: 1 });
    const rejected = await placeMany(system, { userId: 'rc-failed', count: 2, amountMinor: 500n, fundMinor: 10_000n });
    await system.waitForOrders(ids(rejected.orders), ['failed']);
    sim.setKnobs({ rejectRate: 0, failAfterAcceptRate: 1 });
    const failedLater = await placeWithdrawal(system, { userId: 'rc-failed', accountId: rejected.accountId, amountMinor: 700n });
    await system.waitForOrders([failedLater.orderId], ['failed']);
    state.failed = [...rejected.orders, failedLater];

    sim.setKnobs({ failAfterAcceptRate: 0, hangRate: 1 });
    const manual = await placeMany(system, { userId: 'rc-manual', count: 2, amountMinor: 1_200n, fundMinor: 10_000n });
    await system.waitForOrders(ids(manual.orders), ['manual']);
    sim.setKnobs({ hangRate: 0 });
    [state.neverSeen, state.paidUnrecorded] = manual.orders as [PlacedOrder, PlacedOrder];

    for (const name of ['i1', 'i2', 'i3', 'wallet'] as const) state.plant[name] = await system.fundedAccount(`rc-${name}`, '50.00');
    await waitForQuiescence(balance, ledger);
    t.deepEqual(await allInvariants(balance, ledger), []);

    const summary = await run();
    t.deepEqual(summary.findings, []);
    t.like(summary, { mode: 'full', checkedFrom: null, accountsChecked: 7, ordersChecked: 8, providerChecked: 6, breaksResolved: 0 });
    const recorded = await balance.one(sql.type(
      z.object({
        mode: z.string(),
        finishedAt: z.number().nullable(),
        checkedFrom: z.number().nullable(),
        error: z.string().nullable(),
        accountsChecked: z.number(),
        ordersChecked: z.number(),
        providerChecked: z.number(),
        breaksFound: z.number(),
      }),
    )`
    select mode, finished_at as "finishedAt", checked_from as "checkedFrom", error, accounts_checked as "accountsChecked",
           orders_checked as "ordersChecked", provider_checked as "providerChecked", breaks_found as "breaksFound"
      from reconciliation_runs where id = ${summary.runId}`);
    t.like(recorded, {
      mode: 'full',
      checkedFrom: null,
      error: null,
      accountsChecked: 7,
      ordersChecked: 8,
      providerChecked: 6,
      breaksFound: 0,
    });
    t.not(recorded.finishedAt, null);
    t.deepEqual(await runBreaks(), []);
  },
);

test.serial('when the system is clean, then `npm run reconcile -- --full` exits 0', async (t) => {
  const result = await reconcileCli(['--full']);
  t.is(result.code, 0, result.stdout + result.stderr);
  t.regex(result.stdout, /\(full\).*: 7 accounts, 8 orders, 6 checked with the provider; 0 breaks/);
});

test.serial(
  'when one break of each category is planted, then a full run finds each with its category, subject, expected and actual',
  async (t) => {
    const { balance, ledger } = system.db.databases;
    const neverSeen = state.neverSeen!;
    const paidUnrecorded = state.paidUnrecorded!;
    // an operator marks success an order the provider never saw, and failed one it will pay
    for (const [order, outcome] of [
      [neverSeen, 'success'],
      [paidUnrecorded, 'failed'],
    ] as const) {
      const reply = await call(system.url, 'POST', `/admin/withdraws/${order.orderId}/resolve`, {
        token: system.adminToken,
        headers: { 'x-operator': 'carol' },
        // the provider never answered these submissions: only an override resolves them failed
        body: { outcome, reason: 'guessed from the bank portal', override: true },
      });
      t.is(reply.status, 200, reply.text);
    }
    await waitForQuiescence(balance, ledger);
    t.deepEqual(await allInvariants(balance, ledger), [], 'the books agree with each other; only the provider disagrees');
    // no worker from here on: nothing but the plants changes the databases (and no cron runs)
    await system.worker!.stop();

    // the provider pays the order we marked failed (its callback lost)
    system.sim!.setKnobs({ dropCallbackRate: 1 });
    const payout = await call(system.simUrl!, 'POST', '/payouts', {
      headers: { 'idempotency-key': paidUnrecorded.transactionId },
      body: { reference: paidUnrecorded.transactionId, amount: '12.00', currency: 'USD', destination: 'bank-rc-manual' },
    });
    t.is(payout.status, 202, payout.text);
    await eventually('the provider to pay it', async () => {
      const lookup = await psp.getPayout(paidUnrecorded.transactionId);
      return lookup.kind === 'found' && lookup.status === 'paid';
    });

    const b = await system.db.client('balance');
    const l = await system.db.client('ledger');
    // I1: without its CHECK, an account's balance drifts from available + reserved (and from its credits, I3)
    await b.query('alter table accounts drop constraint accounts_balance_split');
    await b.query('update accounts set balance_minor = balance_minor + 100 where id = $1', [state.plant.i1]);
    // I2: a held reservation without an order
    await b.query(`insert into reservations (transaction_id, account_id, amount_minor, status) values ($1, $2, 500, 'held')`, [
      uuidv4(),
      state.plant.i2,
    ]);
    // I3: a credit row without the balance (and, being a credit, without its deposit journal)
    const strayCredit = uuidv4();
    await b.query(
      `insert into credits (transaction_id, account_id, amount_minor, currency, actor) values ($1, $2, 700, 'USD', 'planted')`,
      [strayCredit, state.plant.i3],
    );
    // I4: an unbalanced journal, written with the balance triggers off (its account's projection kept right)
    await l.query('begin');
    await l.query('set local session_replication_role = replica');
    const journal = await l.query<{ id: string }>(
      `insert into journal_transactions (transaction_id, kind, source) values ($1, 'deposit', 'planted') returning id::text`,
      [uuidv4()],
    );
    const journalId = journal.rows[0]!.id;
    await l.query(
      `
    insert into entries (journal_id, ledger_account_id, amount_minor, currency, account_sequence, previous_balance_minor,
                         current_balance_minor, previous_hash, hash)
    select $1, a.id, 300, a.currency, a.entry_count + 1, a.balance_minor, a.balance_minor + 300, a.last_entry_hash, sha256('planted')
      from ledger_accounts a where a.code = 'funding:USD'`,
      [journalId],
    );
    await l.query(
      `update ledger_accounts set balance_minor = balance_minor + 300, entry_count = entry_count + 1, last_entry_hash = sha256('planted') where code = 'funding:USD'`,
    );
    await l.query('commit');
    // the projection: a ledger account's running balance no longer its entries' sum
    const clearing = await l.query<{ balance: string }>(`
    update ledger_accounts set balance_minor = balance_minor + 1234 where code = 'provider_clearing:USD' returning (balance_minor - 1234)::text as balance`);
    const clearingEntries = clearing.rows[0]!.balance;
    // the wallet: a ledger deposit with no Balance credit
    const strayDeposit = uuidv4();
    await postLedgerEvents(
      ledger,
      [
        {
          outboxId: 1,
          topic: 'account.credited',
          transactionId: strayDeposit,
          payload: { transactionId: strayDeposit, accountId: state.plant.wallet, amountMinor: '900', currency: 'USD' },
        },
      ],
      'planted',
    );
    // an order's journals: an extra reverse for a success order (its wallet gets the money back too)
    const extra = state.paid[0]!;
    await postLedgerEvents(
      ledger,
      [
        {
          outboxId: 1,
          topic: 'withdraw.failed',
          transactionId: extra.transactionId,
          payload: { transactionId: extra.transactionId, accountId: extra.accountId, amountMinor: '1000', currency: 'USD' },
        },
      ],
      'planted',
    );

    // an order's reservation no longer matching its status: a success order's money "released"
    const unreserved = state.paid[2]!;
    await b.query('alter table reservations disable trigger user');
    await b.query(`update reservations set status = 'released' where transaction_id = $1`, [unreserved.transactionId]);
    await b.query('alter table reservations enable trigger user');
    // the provider still calls pending a payout we failed (and released), and cannot answer about a paid one
    const stillPending = state.failed[0]!;
    const silent = state.paid[1]!;
    state.providerPending = stillPending.transactionId;
    state.providerSilent = silent.transactionId;

    state.expected = [
      {
        category: 'account_balance_split',
        subject: `account:${state.plant.i1}`,
        expected: 'balance = available + reserved, both >= 0',
        actual: 'balance 5100, available 5000, reserved 0',
      },
      {
        category: 'account_balance_mismatch',
        subject: `account:${state.plant.i1}`,
        expected: 'credits 5000 - success 0',
        actual: 'balance 5100',
      },
      {
        category: 'account_reserved_mismatch',
        subject: `account:${state.plant.i2}`,
        expected: 'reserved 0',
        actual: 'open orders 0, held reservations 500',
      },
      {
        category: 'account_balance_mismatch',
        subject: `account:${state.plant.i3}`,
        expected: 'credits 5700 - success 0',
        actual: 'balance 5000',
      },
      { category: 'ledger_deposit_missing', subject: `credit:${strayCredit}`, expected: 'deposit of 700', actual: 'no deposit journal' },
      { category: 'journal_unbalanced', subject: `journal:${journalId}`, expected: '0', actual: '300' },
      {
        category: 'ledger_account_projection',
        subject: 'ledger-account:provider_clearing:USD',
        expected: `sum of entries ${clearingEntries}`,
        actual: `balance ${BigInt(clearingEntries) + 1234n}`,
      },
      {
        category: 'wallet_mismatch',
        subject: `account:${state.plant.wallet}`,
        expected: 'ledger wallet = available 5000',
        actual: 'ledger wallet 5900',
      },
      {
        category: 'ledger_journals_mismatch',
        subject: `order:${extra.orderId}`,
        expected: 'hold+settle of 1000 for a success order',
        actual: 'hold 1000, reverse 1000, settle 1000',
      },
      {
        category: 'wallet_mismatch',
        subject: `account:${state.paidAccountId}`,
        expected: 'ledger wallet = available 9500',
        actual: 'ledger wallet 10500',
      },
      { category: 'provider_not_paid', subject: `order:${neverSeen.orderId}`, expected: 'provider: paid', actual: 'provider: not_found' },
      {
        category: 'provider_paid_not_recorded',
        subject: `order:${paidUnrecorded.orderId}`,
        expected: 'provider: not paid',
        actual: 'provider: paid',
      },
      {
        category: 'order_reservation_mismatch',
        subject: `order:${unreserved.orderId}`,
        expected: 'a captured reservation for a success order',
        actual: 'released',
      },
      {
        category: 'provider_not_final',
        subject: `order:${stillPending.orderId}`,
        expected: 'provider: failed (the money was released)',
        actual: 'provider: pending',
      },
      {
        category: 'provider_unanswered',
        subject: `order:${silent.orderId}`,
        expected: 'an answer from the provider',
        actual: 'no answer after 1 tries',
      },
    ];
    t.deepEqual([...new Set(state.expected.map((e) => e.category))].sort(), [...RUN_CATEGORIES].sort(), 'every category is planted');

    const summary = await run();
    state.firstRun = summary;
    t.deepEqual(summary.findings.map(keyOf).sort(), state.expected.map(keyOf).sort());
    const found = new Map(summary.findings.map((f) => [keyOf(f), f]));
    for (const e of state.expected) t.like(found.get(keyOf(e)), e, keyOf(e));
    t.like(found.get(`provider_not_paid order:${neverSeen.orderId}`), {
      transactionId: neverSeen.transactionId,
      accountId: neverSeen.accountId,
      currency: 'USD',
    });

    const breaks = await runBreaks();
    t.deepEqual(breaks.map(keyOf).sort(), state.expected.map(keyOf).sort());
    t.true(breaks.every((row) => row.seenCount === 1 && row.resolvedAt === null && row.details.runId === summary.runId));
    for (const e of state.expected)
      t.like(
        breaks.find((row) => keyOf(row) === keyOf(e)),
        { expected: e.expected, actual: e.actual },
      );
    const recorded = await balance.oneFirst(
      sql.type(z.object({ n: z.number() }))`select breaks_found as n from reconciliation_runs where id = ${summary.runId}`,
    );
    t.is(recorded, state.expected.length);
  },
);

test.serial('when a run sees the same breaks again, then it bumps last_seen_at and seen_count without duplicating them', async (t) => {
  const before = await runBreaks();
  const summary = await run();
  t.deepEqual(summary.findings.map(keyOf).sort(), state.expected.map(keyOf).sort());
  t.is(summary.breaksResolved, 0);
  const after = await runBreaks();
  t.deepEqual(
    after.map((row) => row.id),
    before.map((row) => row.id),
    'the same rows, no new ones',
  );
  for (const [i, row] of after.entries()) {
    t.is(row.seenCount, 2, keyOf(row));
    t.is(row.firstSeenAt, before[i]!.firstSeenAt);
    t.true(row.lastSeenAt > before[i]!.lastSeenAt, keyOf(row));
    t.is(row.details.runId, summary.runId);
  }
});

test.serial('when one break is repaired, then the next run resolves that break only', async (t) => {
  const l = await system.db.client('ledger');
  await l.query(`update ledger_accounts set balance_minor = balance_minor - 1234 where code = 'provider_clearing:USD'`);
  const summary = await run();
  const remaining = state.expected.filter((e) => e.category !== 'ledger_account_projection');
  t.deepEqual(summary.findings.map(keyOf).sort(), remaining.map(keyOf).sort());
  t.is(summary.breaksResolved, 1);
  const breaks = await runBreaks();
  const repaired = breaks.filter((row) => row.resolvedAt !== null);
  t.deepEqual(repaired.map(keyOf), ['ledger_account_projection ledger-account:provider_clearing:USD']);
  t.is(repaired[0]!.resolution, `cleared: not observed by reconciliation run ${summary.runId}`);
  t.deepEqual(
    breaks.filter((row) => row.resolvedAt === null).map((row) => row.seenCount),
    Array(remaining.length).fill(3),
  );
  t.is(
    await system.db.databases.balance.oneFirst(sql.type(z.object({ n: z.number() }))`
    select breaks_resolved as n from reconciliation_runs where id = ${summary.runId}`),
    1,
  );
});

test.serial('when breaks are open, then the withdraw_breaks_open gauge counts them by category and age', async (t) => {
  const gauge = await openBreakGauge();
  const expected = new Map<string, number>();
  for (const e of state.expected.filter((x) => x.category !== 'ledger_account_projection')) {
    expected.set(`${e.category} <1h`, (expected.get(`${e.category} <1h`) ?? 0) + 1);
  }
  t.deepEqual([...gauge.entries()].filter(([, n]) => n > 0).sort(), [...expected.entries()].sort());

  const b = await system.db.client('balance');
  await b.query(
    `update reconciliation_breaks set first_seen_at = now() - interval '2 days' where category = 'journal_unbalanced' and resolved_at is null`,
  );
  await b.query(
    `update reconciliation_breaks set first_seen_at = now() - interval '3 hours' where category = 'wallet_mismatch' and subject = $1`,
    [`account:${state.plant.wallet}`],
  );
  await b.query(`update reconciliation_breaks set first_seen_at = now() - interval '8 days' where category = 'provider_not_paid'`);
  const aged = await openBreakGauge();
  t.is(aged.get('journal_unbalanced 1d-7d'), 1);
  t.is(aged.get('wallet_mismatch <1h'), 1);
  t.is(aged.get('wallet_mismatch 1h-24h'), 1);
  t.is(aged.get('provider_not_paid >7d'), 1);
  t.falsy(aged.get('journal_unbalanced <1h'));
  t.falsy(aged.get('provider_not_paid <1h'));
  t.falsy(aged.get('ledger_account_projection <1h'), 'a resolved break is not counted');
  const total = [...aged.values()].reduce((sum, n) => sum + n, 0);
  t.is(total, state.expected.length - 1);
});

test.serial(
  'when an operator resolves a break, then it is closed with the operator in the audit trail, and a run that still sees the problem opens it again',
  async (t) => {
    const { balance } = system.db.databases;
    const open = (await runBreaks()).find((row) => row.category === 'journal_unbalanced' && row.resolvedAt === null)!;
    const resolveBreak = (id: string, body: unknown) =>
      call(system.url, 'POST', `/admin/breaks/${id}/resolve`, { token: system.adminToken, headers: { 'x-operator': 'frank' }, body });
    t.is((await resolveBreak(String(open.id), { resolution: 'x' })).status, 400, 'a resolution says something');
    const reply = await resolveBreak(String(open.id), { resolution: 'compensating journal requested' });
    t.is(reply.status, 200, reply.text);
    // the shared admin token is the identity; its X-Operator header names no one
    t.like(reply.body, { code: 0, msg: 'resolved', data: { breakId: String(open.id), operator: 'admin' } });
    const row = (await runBreaks()).find((b) => b.id === open.id)!;
    t.not(row.resolvedAt, null);
    t.is(row.resolution, 'admin: compensating journal requested');
    const audit = await balance.any(sql.type(z.object({ operator: z.string(), action: z.string(), details: z.record(z.unknown()) }))`
    select operator, action, details from admin_audit_log where subject = ${`break:${open.id}`}`);
    t.deepEqual(audit, [
      {
        operator: 'admin',
        action: 'break.resolve',
        details: { category: 'journal_unbalanced', subject: open.subject, resolution: 'compensating journal requested' },
      },
    ]);
    t.is((await resolveBreak(String(open.id), { resolution: 'once more' })).status, 404, 'already resolved');
    t.is((await resolveBreak('999999', { resolution: 'no such break' })).status, 404);
    t.is((await resolveBreak('abc', { resolution: 'no such break' })).status, 404);

    const summary = await run();
    t.true(
      summary.findings.some((f) => keyOf(f) === keyOf(open)),
      'the journal is still unbalanced',
    );
    const reopened = (await runBreaks()).filter((b) => keyOf(b) === keyOf(open) && b.resolvedAt === null);
    t.is(reopened.length, 1);
    t.true(reopened[0]!.id > open.id && reopened[0]!.seenCount === 1, 'a new break, not the resolved one');
  },
);

test.serial('when breaks are present, then `npm run reconcile -- --full` exits 1 and lists them', async (t) => {
  const result = await reconcileCli(['--full', '--json']);
  t.is(result.code, 1, result.stderr);
  const summary = JSON.parse(result.stdout) as RunSummary;
  // the command asks the real provider, not the test's planted one
  const planted = new Set(['provider_not_final', 'provider_unanswered']);
  const remaining = state.expected.filter((e) => e.category !== 'ledger_account_projection' && !planted.has(e.category));
  t.deepEqual(summary.findings.map(keyOf).sort(), remaining.map(keyOf).sort());
  const text = await reconcileCli(['--full']);
  t.is(text.code, 1);
  for (const e of remaining)
    t.true(text.stdout.includes(`${e.category} ${e.subject}: expected ${e.expected}, actual ${e.actual}`), keyOf(e));
});

test.serial(
  'when a run is given the time it runs at, then it checks only the orders that settled RECONCILE_SETTLE_MS before it',
  async (t) => {
    const { balance } = system.db.databases;
    const settleMs = 60_000;
    const settling = recoveryConfig(system, { RECONCILE_SETTLE_MS: String(settleMs) });
    const runAt = (ms: number) =>
      runReconciliation({ databases: system.db.databases, psp: null, config: settling, logger, mode: 'full', now: new Date(ms) });
    const orders = await balance.one(sql.type(z.object({ total: z.number(), lastMovedAt: z.number() }))`
    select count(*)::int as total, max(updated_at) as "lastMovedAt" from withdraw_orders`);
    // a millisecond too early, the order that moved last is still settling; a millisecond later it is checked
    const early = await runAt(orders.lastMovedAt + settleMs - 1);
    t.is(early.checkedUntil, new Date(orders.lastMovedAt - 1).toISOString());
    t.true(early.ordersChecked < orders.total, `${early.ordersChecked} of ${orders.total} orders checked`);
    const late = await runAt(orders.lastMovedAt + settleMs + 1);
    t.is(late.ordersChecked, orders.total);
  },
);
