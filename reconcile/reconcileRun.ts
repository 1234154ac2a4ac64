// Three-way reconciliation: Balance DB × Ledger DB × orders (× the provider with --full; the
// recurring provider checks are reconcile/providerChecks.ts). An incremental run (reconcile__run,
// every 5 minutes) checks what changed since the previous successful run, up to now minus
// RECONCILE_SETTLE_MS (events still travelling through the outboxes are not breaks; the delay also
// outlasts any transaction, so a change dated before it has committed), at most
// RECONCILE_WINDOW_MAX_MS of changes per run (a run behind catches up window by window, and a
// failed run is retried on a bounded window, never a growing one). What changed is read through
// indexes, in pages of RECONCILE_PAGE_SIZE: orders by updated_at, deposits by created_at, and the
// accounts they touch (an account's money only moves with one of them); each page is checked and
// recorded before the next is read, so memory stays flat. Statements run under
// MAINTENANCE_STATEMENT_TIMEOUT_MS. Nothing sums an account's history except `--full`, which checks
// every account (I3 included: balance = credits − success), order, deposit and ledger account.
// Findings are upserted into reconciliation_breaks; open breaks of the categories a run owns are
// resolved on the subjects it checked and found clean, never on subjects it skipped.
// The checks may read streaming replicas (`reads`: BALANCE_/LEDGER_REPORTS_DATABASE_URL), once they
// have replayed what the primaries had committed when the window was chosen; runs and breaks are
// always written to the primaries, and "has it moved since" is asked of the primary.
import { sql, type DatabasePool, type DatabaseTransactionConnection } from 'slonik';
import { z } from 'zod';
import type { Config } from '../app/config.ts';
import type { Databases } from '../app/db/pools.ts';
import { primaryPosition, waitForReplay } from '../app/db/replicas.ts';
import type { PspAdapter } from '../app/gateway/pspAdapter.ts';
import type { Logger } from '../app/logger.ts';
import { OPEN_STATUSES } from '../app/withdraw/withdrawStateMachine.ts';
import { recordFindings, type Finding, type RunCategory } from './breakQueries.ts';
import { checkAllWithProvider, providerChecked as providerCheckedSubjects } from './providerChecks.ts';
import {
  depositFindings,
  journalFindings,
  ledgerFindings,
  ledgerJournals,
  walletFindings,
  type CreditFacts,
  type OrderFacts,
  type Window,
} from './reconcileLedger.ts';

export { RUN_CATEGORIES, type Finding, type RunCategory } from './breakQueries.ts';

export type RunSummary = Readonly<{
  runId: string;
  mode: 'incremental' | 'full';
  checkedFrom: string | null;
  checkedUntil: string;
  accountsChecked: number;
  ordersChecked: number;
  providerChecked: number;
  findings: readonly Finding[];
  breaksResolved: number;
}>;

const AccountRow = z.object({
  accountId: z.string(),
  currency: z.string(),
  updatedAt: z.number(),
  balanceMinor: z.bigint(),
  availableMinor: z.bigint(),
  reservedMinor: z.bigint(),
  heldMinor: z.bigint(),
  /** --full only: sums over the account's whole history */
  openOrdersMinor: z.bigint().nullable(),
  creditsMinor: z.bigint().nullable(),
  successMinor: z.bigint().nullable(),
});
type AccountRow = z.infer<typeof AccountRow>;
const OrderRow = z.object({
  orderId: z.string(),
  transactionId: z.string(),
  accountId: z.string(),
  currency: z.string(),
  amountMinor: z.bigint(),
  status: z.string(),
  updatedAt: z.number(),
  atText: z.string(),
  reservation: z.string().nullable(),
});
type OrderRow = z.infer<typeof OrderRow>;
const CreditRow = z.object({
  transactionId: z.string(),
  accountId: z.string(),
  amountMinor: z.bigint(),
  currency: z.string(),
  atText: z.string(),
});
type CreditRow = z.infer<typeof CreditRow>;

async function chooseWindow(balance: DatabasePool, mode: 'incremental' | 'full', r: Config['reconcile'], now: Date): Promise<Window> {
  const latest = new Date(now.getTime() - r.settleMs);
  if (mode === 'full') return { from: null, until: latest };
  const previous = await balance.maybeOneFirst(sql.type(z.object({ checkedUntil: z.number() }))`
    select checked_until as "checkedUntil" from reconciliation_runs
     where finished_at is not null and error is null order by finished_at desc limit 1`);
  // the first run ever looks back one window; --full covers all of history
  const from = new Date(previous ?? latest.getTime() - r.windowMaxMs);
  const until = new Date(Math.min(latest.getTime(), from.getTime() + r.windowMaxMs));
  return { from: until < from ? until : from, until };
}

const at = (d: Date) => d.toISOString();

/** One short REPEATABLE READ, READ ONLY transaction under the maintenance statement timeout. */
async function snapshot<T>(pool: DatabasePool, timeoutMs: number, read: (tx: DatabaseTransactionConnection) => Promise<T>): Promise<T> {
  return pool.transaction(async (tx) => {
    await tx.query(sql.unsafe`set transaction isolation level repeatable read, read only`);
    await tx.query(sql.unsafe`select set_config('statement_timeout', ${String(timeoutMs)}, true)`);
    return read(tx);
  });
}

const keysetAfter = (column: string, idColumn: string, after: { at: string; id: string } | null) =>
  after === null
    ? sql.fragment`true`
    : sql.fragment`(${sql.identifier(['x', column])}, ${sql.identifier(['x', idColumn])}) > (${after.at}::timestamptz, ${after.id}::uuid)`;

async function orderPage(tx: DatabaseTransactionConnection, window: Window, after: { at: string; id: string } | null, limit: number) {
  return tx.any(sql.type(OrderRow)`
    select x.id as "orderId", x.transaction_id as "transactionId", x.account_id as "accountId", x.currency,
           x.amount_minor as "amountMinor", x.status, x.updated_at as "updatedAt",
           to_char(x.updated_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as "atText",
           (select r.status from reservations r where r.transaction_id = x.transaction_id) as reservation
      from withdraw_orders x
     where x.updated_at <= ${at(window.until)}::timestamptz
       and ${window.from === null ? sql.fragment`true` : sql.fragment`x.updated_at > ${at(window.from)}::timestamptz`}
       and ${keysetAfter('updated_at', 'id', after)}
     order by x.updated_at, x.id limit ${limit}`);
}

async function creditPage(tx: DatabaseTransactionConnection, window: Window, after: { at: string; id: string } | null, limit: number) {
  return tx.any(sql.type(CreditRow)`
    select x.transaction_id as "transactionId", x.account_id as "accountId", x.amount_minor as "amountMinor", x.currency,
           to_char(x.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as "atText"
      from credits x
     where x.created_at <= ${at(window.until)}::timestamptz
       and ${window.from === null ? sql.fragment`true` : sql.fragment`x.created_at > ${at(window.from)}::timestamptz`}
       and ${keysetAfter('created_at', 'transaction_id', after)}
     order by x.created_at, x.transaction_id limit ${limit}`);
}

function accountColumns(full: boolean) {
  const open = sql.array([...OPEN_STATUSES], 'text');
  return sql.fragment`
    a.id as "accountId", a.currency, a.updated_at as "updatedAt", a.balance_minor as "balanceMinor",
    a.available_minor as "availableMinor", a.reserved_minor as "reservedMinor",
    coalesce((select sum(r.amount_minor) from reservations r where r.account_id = a.id and r.status = 'held'), 0)::bigint as "heldMinor",
    ${
      full
        ? sql.fragment`
    coalesce((select sum(o.amount_minor) from withdraw_orders o where o.account_id = a.id and o.status = any(${open})), 0)::bigint as "openOrdersMinor",
    coalesce((select sum(c.amount_minor) from credits c where c.account_id = a.id), 0)::bigint as "creditsMinor",
    coalesce((select sum(o.amount_minor) from withdraw_orders o where o.account_id = a.id and o.status = 'success'), 0)::bigint as "successMinor"`
        : sql.fragment`null::bigint as "openOrdersMinor", null::bigint as "creditsMinor", null::bigint as "successMinor"`
    }`;
}

function balanceFindings(accounts: readonly AccountRow[]): Finding[] {
  const findings: Finding[] = [];
  for (const a of accounts) {
    const base = { subject: `account:${a.accountId}`, accountId: a.accountId, currency: a.currency };
    if (a.balanceMinor !== a.availableMinor + a.reservedMinor || a.availableMinor < 0n || a.reservedMinor < 0n) {
      findings.push({
        ...base,
        category: 'account_balance_split',
        expected: 'balance = available + reserved, both >= 0',
        actual: `balance ${a.balanceMinor}, available ${a.availableMinor}, reserved ${a.reservedMinor}`,
      });
    }
    const open = a.openOrdersMinor ?? a.reservedMinor;
    if (a.reservedMinor !== open || a.reservedMinor !== a.heldMinor) {
      findings.push({
        ...base,
        category: 'account_reserved_mismatch',
        expected: `reserved ${a.reservedMinor}`,
        actual: `${a.openOrdersMinor === null ? '' : `open orders ${a.openOrdersMinor}, `}held reservations ${a.heldMinor}`,
      });
    }
    if (a.creditsMinor !== null && a.successMinor !== null && a.balanceMinor !== a.creditsMinor - a.successMinor) {
      findings.push({
        ...base,
        category: 'account_balance_mismatch',
        expected: `credits ${a.creditsMinor} - success ${a.successMinor}`,
        actual: `balance ${a.balanceMinor}`,
      });
    }
  }
  return findings;
}

const RESERVATION_OF: Readonly<Record<string, string>> = {
  init: 'held',
  processing: 'held',
  manual: 'held',
  success: 'captured',
  failed: 'released',
};

function reservationFindings(orders: readonly OrderRow[]): Finding[] {
  return orders
    .filter((o) => o.reservation !== RESERVATION_OF[o.status])
    .map((o) => ({
      category: 'order_reservation_mismatch' as const,
      subject: `order:${o.orderId}`,
      orderId: o.orderId,
      accountId: o.accountId,
      transactionId: o.transactionId,
      currency: o.currency,
      expected: `a ${RESERVATION_OF[o.status]} reservation for a ${o.status} order`,
      actual: o.reservation === null ? 'no reservation' : `${o.reservation}`,
    }));
}

type Run = {
  /** the primaries: runs and breaks are written here, and what moved is asked here */
  readonly databases: Databases;
  /** where the checks read (replicas, or the primaries themselves) */
  readonly reads: Databases;
  readonly config: Config;
  readonly window: Window;
  readonly full: boolean;
  readonly runId: string;
  readonly seenAccounts: Set<string>;
  findings: Finding[];
  breaksResolved: number;
  accountsChecked: number;
  ordersChecked: number;
};

/**
 * The Balance DB was read first, the ledger after it: an account or order that moved in between
 * looks broken when it is not. Findings on subjects that changed since are dropped, and so is the
 * subject from what the run checked (its open break stays open); the next run sees it at rest.
 */
async function movedSince(
  balance: DatabasePool,
  findings: readonly Finding[],
  accounts: Map<string, number>,
  orders: Map<string, OrderRow>,
) {
  const accountIds = findings.filter((f) => f.category === 'wallet_mismatch').map((f) => f.accountId!);
  const orderIds = findings.filter((f) => f.category === 'ledger_journals_mismatch').map((f) => f.orderId!);
  const accountsNow = await balance.any(sql.type(z.object({ id: z.string(), updatedAt: z.number() }))`
    select id, updated_at as "updatedAt" from accounts where id = any(${sql.array(accountIds, 'uuid')})`);
  const ordersNow = await balance.any(sql.type(z.object({ id: z.string(), status: z.string(), updatedAt: z.number() }))`
    select id, status, updated_at as "updatedAt" from withdraw_orders where id = any(${sql.array(orderIds, 'uuid')})`);
  const moved = new Set<string>();
  const accountNow = new Map(accountsNow.map((a) => [a.id, a.updatedAt]));
  for (const id of accountIds) if (accountNow.get(id) !== accounts.get(id)) moved.add(`account:${id}`);
  const orderNow = new Map(ordersNow.map((o) => [o.id, o]));
  for (const id of orderIds) {
    const now = orderNow.get(id);
    const then = orders.get(id);
    if (!now || !then || now.status !== then.status || now.updatedAt !== then.updatedAt) moved.add(`order:${id}`);
  }
  return moved;
}

/** Checks one page of accounts, orders and deposits across both databases, and records it. */
async function checkPage(run: Run, page: { accounts: readonly AccountRow[]; orders: readonly OrderRow[]; credits: readonly CreditRow[] }) {
  const { databases, reads, window } = run;
  const journals = await ledgerJournals(reads.ledger, [
    ...page.orders.map((o) => o.transactionId),
    ...page.credits.map((c) => c.transactionId),
  ]);
  const atRest = page.accounts.filter((a) => a.updatedAt <= window.until.getTime());
  const cross = [
    ...journalFindings(page.orders as readonly OrderFacts[], journals),
    ...depositFindings(page.credits as readonly CreditFacts[], journals),
    ...(await walletFindings(reads.ledger, atRest)),
  ];
  const moved = await movedSince(
    databases.balance,
    cross,
    new Map(page.accounts.map((a) => [a.accountId, a.updatedAt])),
    new Map(page.orders.map((o) => [o.orderId, o])),
  );
  const findings = [...balanceFindings(page.accounts), ...reservationFindings(page.orders), ...cross.filter((f) => !moved.has(f.subject))];
  const accountSubjects = page.accounts.map((a) => `account:${a.accountId}`);
  const orderSubjects = page.orders.map((o) => `order:${o.orderId}`);
  const checked = new Map<RunCategory, readonly string[]>([
    ['account_balance_split', accountSubjects],
    ['account_reserved_mismatch', accountSubjects],
    ['order_reservation_mismatch', orderSubjects],
    ['wallet_mismatch', atRest.map((a) => `account:${a.accountId}`).filter((s) => !moved.has(s))],
    ['ledger_journals_mismatch', orderSubjects.filter((s) => !moved.has(s))],
    ['ledger_deposit_missing', page.credits.map((c) => `credit:${c.transactionId}`)],
  ]);
  // I3 is a sum over the account's history: only --full looks at it, so only --full clears it
  if (run.full) checked.set('account_balance_mismatch', accountSubjects);
  run.breaksResolved += await recordFindings(databases.balance, run.runId, findings, checked);
  run.findings.push(...findings);
  run.accountsChecked += page.accounts.length;
  run.ordersChecked += page.orders.length;
}

/** Accounts of these ids not checked yet in this run. */
async function newAccounts(run: Run, tx: DatabaseTransactionConnection, ids: readonly string[]): Promise<AccountRow[]> {
  const fresh = [...new Set(ids)].filter((id) => !run.seenAccounts.has(id));
  for (const id of fresh) run.seenAccounts.add(id);
  if (fresh.length === 0) return [];
  return [
    ...(await tx.any(sql.type(AccountRow)`
    select ${accountColumns(run.full)} from accounts a where a.id = any(${sql.array(fresh, 'uuid')})`)),
  ];
}

async function walkOrders(run: Run): Promise<void> {
  const { pageSize } = run.config.reconcile;
  const timeoutMs = run.config.maintenance.statementTimeoutMs;
  let after: { at: string; id: string } | null = null;
  for (;;) {
    const current = after;
    const page = await snapshot(run.reads.balance, timeoutMs, async (tx) => {
      const orders = await orderPage(tx, run.window, current, pageSize);
      const accounts = run.full
        ? []
        : await newAccounts(
            run,
            tx,
            orders.map((o) => o.accountId),
          );
      return { orders, accounts, credits: [] };
    });
    if (page.orders.length > 0) await checkPage(run, page);
    if (page.orders.length < pageSize) return;
    const last: OrderRow = page.orders[page.orders.length - 1]!;
    after = { at: last.atText, id: last.orderId };
  }
}

async function walkCredits(run: Run): Promise<void> {
  const { pageSize } = run.config.reconcile;
  const timeoutMs = run.config.maintenance.statementTimeoutMs;
  let after: { at: string; id: string } | null = null;
  for (;;) {
    const current = after;
    const page = await snapshot(run.reads.balance, timeoutMs, async (tx) => {
      const credits = await creditPage(tx, run.window, current, pageSize);
      const accounts = run.full
        ? []
        : await newAccounts(
            run,
            tx,
            credits.map((c) => c.accountId),
          );
      return { orders: [], accounts, credits };
    });
    if (page.credits.length > 0 || page.accounts.length > 0) await checkPage(run, page);
    if (page.credits.length < pageSize) return;
    const last: CreditRow = page.credits[page.credits.length - 1]!;
    after = { at: last.atText, id: last.transactionId };
  }
}

/** --full: every account, by id. */
async function walkAllAccounts(run: Run): Promise<void> {
  const { pageSize } = run.config.reconcile;
  let afterId = '00000000-0000-0000-0000-000000000000';
  for (;;) {
    const current = afterId;
    const accounts = await snapshot(run.reads.balance, run.config.maintenance.statementTimeoutMs, (tx) =>
      tx.any(sql.type(AccountRow)`
        select ${accountColumns(true)} from accounts a where a.id > ${current}::uuid order by a.id limit ${pageSize}`),
    );
    if (accounts.length > 0) await checkPage(run, { accounts, orders: [], credits: [] });
    if (accounts.length < pageSize) return;
    afterId = accounts[accounts.length - 1]!.accountId;
  }
}

/**
 * Replicas must show at least what the primaries had committed once the window was chosen:
 * otherwise an order settled on the primary would look unsettled on a lagging replica.
 */
async function awaitConsistentPoint(primary: Databases, reads: Databases, waitMs: number): Promise<void> {
  for (const database of ['balance', 'ledger'] as const) {
    if (reads[database] === primary[database]) continue;
    await waitForReplay(reads[database], await primaryPosition(primary[database]), waitMs, `reconciliation (${database} replica)`);
  }
}

export async function runReconciliation(deps: {
  databases: Databases;
  /** where the checks read (replicas); breaks and runs are always written to `databases` */
  reads?: Databases;
  psp: PspAdapter | null;
  config: Config;
  logger: Logger;
  mode: 'incremental' | 'full';
  /** the time the run checks up to, less RECONCILE_SETTLE_MS (default: the real clock) */
  now?: Date;
}): Promise<RunSummary> {
  const { balance } = deps.databases;
  const reads = deps.reads ?? deps.databases;
  const now = deps.now ?? new Date();
  const window = await chooseWindow(balance, deps.mode, deps.config.reconcile, now);
  const runId = await balance.oneFirst(sql.type(z.object({ id: z.bigint() }))`
    insert into reconciliation_runs (mode, checked_until, checked_from)
    values (${deps.mode}, ${at(window.until)}, ${window.from ? at(window.from) : null}) returning id`);
  const run: Run = {
    databases: deps.databases,
    reads,
    config: deps.config,
    window,
    full: deps.mode === 'full',
    runId: runId.toString(),
    seenAccounts: new Set(),
    findings: [],
    breaksResolved: 0,
    accountsChecked: 0,
    ordersChecked: 0,
  };
  try {
    await awaitConsistentPoint(deps.databases, reads, deps.config.database.replicaWaitMs);
    if (run.full) await walkAllAccounts(run);
    await walkOrders(run);
    await walkCredits(run);
    const ledgerSide = await snapshot(reads.ledger, deps.config.maintenance.statementTimeoutMs, (tx) =>
      ledgerFindings(tx, window, run.full),
    );
    run.breaksResolved += await recordFindings(
      balance,
      run.runId,
      ledgerSide.findings,
      new Map([['ledger_account_projection', ledgerSide.checked]]),
    );
    run.findings.push(...ledgerSide.findings);
    let providerChecked = 0;
    if (run.full && deps.psp) {
      const provider = await checkAllWithProvider(
        { databases: deps.databases, reads: reads.balance, psp: deps.psp, config: deps.config, now },
        window.until,
        deps.config.reconcile.providerChecksMax,
      );
      run.breaksResolved += await recordFindings(balance, run.runId, provider.findings, providerCheckedSubjects(provider.answeredSubjects));
      run.findings.push(...provider.findings);
      providerChecked = provider.answered;
    }
    await balance.query(sql.unsafe`
      update reconciliation_runs set finished_at = now(), accounts_checked = ${run.accountsChecked},
             orders_checked = ${run.ordersChecked}, provider_checked = ${providerChecked},
             breaks_found = ${run.findings.length}, breaks_resolved = ${run.breaksResolved}
       where id = ${runId}`);
    const summary: RunSummary = {
      runId: run.runId,
      mode: deps.mode,
      checkedFrom: window.from ? at(window.from) : null,
      checkedUntil: at(window.until),
      accountsChecked: run.accountsChecked,
      ordersChecked: run.ordersChecked,
      providerChecked,
      findings: run.findings,
      breaksResolved: run.breaksResolved,
    };
    if (run.findings.length > 0) deps.logger.warn({ runId: summary.runId, breaks: run.findings.length }, 'reconciliation found breaks');
    return summary;
  } catch (error) {
    await balance
      .query(sql.unsafe`
      update reconciliation_runs set finished_at = now(), error = ${String((error as Error).message).slice(0, 1000)} where id = ${runId}`)
      .catch(() => {});
    throw error;
  }
}
