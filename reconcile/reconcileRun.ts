// Three-way reconciliation: Balance DB × Ledger DB × orders × provider. A run checks what changed
// since the previous run (or everything with mode 'full'), up to now minus RECONCILE_SETTLE_MS so
// that events still travelling through the outboxes are not mistaken for breaks. Findings are
// upserted into reconciliation_breaks (first/last seen, count); breaks of the categories a run
// owns that it no longer observes on the subjects it checked are resolved. A run records itself.
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { OPEN_STATUSES } from '../app/withdraw/withdrawStateMachine.ts';
import type { Config } from '../app/config.ts';
import type { Databases } from '../app/db/pools.ts';
import { primaryPosition, waitForReplay } from '../app/db/replicas.ts';
import type { PspAdapter } from '../app/gateway/pspAdapter.ts';
import type { Logger } from '../app/logger.ts';

export const RUN_CATEGORIES = [
  'account_balance_split', // I1
  'account_reserved_mismatch', // I2
  'account_balance_mismatch', // I3
  'journal_unbalanced', // I4
  'ledger_account_projection', // I4: running balance vs its entries
  'wallet_mismatch', // I5: ledger wallet vs available, for accounts at rest
  'ledger_journals_mismatch', // I5: an order's journals vs its status
  'ledger_deposit_missing', // I5: a credit without its deposit journal
  'provider_not_paid', // we say success, the provider does not say paid
  'provider_paid_not_recorded', // the provider says paid, we say failed
] as const;
export type RunCategory = (typeof RUN_CATEGORIES)[number];

export type Finding = Readonly<{
  category: RunCategory;
  subject: string;
  orderId?: string | null;
  accountId?: string | null;
  transactionId?: string | null;
  currency?: string | null;
  expected: string;
  actual: string;
  details?: Record<string, unknown>;
}>;

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

const WINDOW_OVERLAP_MS = 5 * 60_000;
const PROVIDER_CHECK_CONCURRENCY = 16;

const AccountRow = z.object({
  accountId: z.string(),
  currency: z.string(),
  updatedAt: z.number(),
  balanceMinor: z.bigint(),
  availableMinor: z.bigint(),
  reservedMinor: z.bigint(),
  openOrdersMinor: z.bigint(),
  heldMinor: z.bigint(),
  creditsMinor: z.bigint(),
  successMinor: z.bigint(),
});
const OrderRow = z.object({
  orderId: z.string(),
  transactionId: z.string(),
  accountId: z.string(),
  currency: z.string(),
  amountMinor: z.bigint(),
  status: z.string(),
  updatedAt: z.number(),
});
const CreditRow = z.object({ transactionId: z.string(), accountId: z.string(), amountMinor: z.bigint(), currency: z.string() });
const JournalRow = z.object({ transactionId: z.string(), kind: z.string(), walletAmountMinor: z.bigint().nullable() });
const WalletRow = z.object({ externalId: z.string(), balanceMinor: z.bigint() });

type Window = { from: Date | null; until: Date };

async function chooseWindow(balance: DatabasePool, mode: 'incremental' | 'full', settleMs: number, now: Date): Promise<Window> {
  const until = new Date(now.getTime() - settleMs);
  if (mode === 'full') return { from: null, until };
  const previous = await balance.maybeOneFirst(sql.type(z.object({ checkedUntil: z.number() }))`
    select checked_until as "checkedUntil" from reconciliation_runs
     where finished_at is not null and error is null order by finished_at desc limit 1`);
  return { from: previous === null ? null : new Date(previous - WINDOW_OVERLAP_MS), until };
}

const inWindow = (column: string, window: Window) =>
  window.from === null
    ? sql.fragment`${sql.identifier([column])} <= ${window.until.toISOString()}::timestamptz`
    : sql.fragment`${sql.identifier([column])} > ${window.from.toISOString()}::timestamptz and ${sql.identifier([column])} <= ${window.until.toISOString()}::timestamptz`;

/** I1–I3 and the snapshot the cross-database checks use, from one consistent Balance DB snapshot. */
async function balanceSide(balance: DatabasePool, window: Window) {
  return balance.transaction(async (tx) => {
    await tx.query(sql.unsafe`set transaction isolation level repeatable read, read only`);
    const accounts = await tx.any(sql.type(AccountRow)`
      select a.id as "accountId", a.currency, a.updated_at as "updatedAt", a.balance_minor as "balanceMinor",
             a.available_minor as "availableMinor", a.reserved_minor as "reservedMinor",
             coalesce((select sum(o.amount_minor) from withdraw_orders o
                        where o.account_id = a.id and o.status = any(${sql.array([...OPEN_STATUSES], 'text')})), 0)::bigint as "openOrdersMinor",
             coalesce((select sum(r.amount_minor) from reservations r where r.account_id = a.id and r.status = 'held'), 0)::bigint as "heldMinor",
             coalesce((select sum(c.amount_minor) from credits c where c.account_id = a.id), 0)::bigint as "creditsMinor",
             coalesce((select sum(o.amount_minor) from withdraw_orders o
                        where o.account_id = a.id and o.status = 'success'), 0)::bigint as "successMinor"
        from accounts a
       where ${window.from === null ? sql.fragment`true` : sql.fragment`a.updated_at > ${window.from.toISOString()}::timestamptz`}`);
    const orders = await tx.any(sql.type(OrderRow)`
      select o.id as "orderId", o.transaction_id as "transactionId", o.account_id as "accountId", o.currency,
             o.amount_minor as "amountMinor", o.status, o.updated_at as "updatedAt"
        from withdraw_orders o where ${inWindow('updated_at', window)}`);
    const credits = await tx.any(sql.type(CreditRow)`
      select c.transaction_id as "transactionId", c.account_id as "accountId", c.amount_minor as "amountMinor", c.currency
        from credits c where ${inWindow('created_at', window)}`);
    return { accounts, orders, credits };
  });
}

function balanceFindings(accounts: readonly z.infer<typeof AccountRow>[]): Finding[] {
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
    if (a.reservedMinor !== a.openOrdersMinor || a.reservedMinor !== a.heldMinor) {
      findings.push({
        ...base,
        category: 'account_reserved_mismatch',
        expected: `reserved ${a.reservedMinor}`,
        actual: `open orders ${a.openOrdersMinor}, held reservations ${a.heldMinor}`,
      });
    }
    if (a.balanceMinor !== a.creditsMinor - a.successMinor) {
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

const EXPECTED_KINDS: Readonly<Record<string, readonly string[]>> = {
  init: ['hold'],
  processing: ['hold'],
  manual: ['hold'],
  success: ['hold', 'settle'],
  failed: ['hold', 'reverse'],
};

async function ledgerJournals(ledger: DatabasePool, transactionIds: readonly string[]) {
  const byTx = new Map<string, Map<string, bigint | null>>();
  for (let i = 0; i < transactionIds.length; i += 5_000) {
    const chunk = transactionIds.slice(i, i + 5_000);
    const rows = await ledger.any(sql.type(JournalRow)`
      select j.transaction_id as "transactionId", j.kind,
             (select sum(abs(e.amount_minor)) / 2 from entries e where e.journal_id = j.id)::bigint as "walletAmountMinor"
        from journal_transactions j where j.transaction_id = any(${sql.array([...chunk], 'uuid')})`);
    for (const row of rows) {
      const kinds = byTx.get(row.transactionId) ?? new Map();
      kinds.set(row.kind, row.walletAmountMinor);
      byTx.set(row.transactionId, kinds);
    }
  }
  return byTx;
}

async function crossFindings(databases: Databases, snapshot: Awaited<ReturnType<typeof balanceSide>>, window: Window): Promise<Finding[]> {
  const findings: Finding[] = [];
  const settled = snapshot.orders.filter((o) => o.updatedAt <= window.until.getTime());
  const journals = await ledgerJournals(databases.ledger, [
    ...settled.map((o) => o.transactionId),
    ...snapshot.credits.map((c) => c.transactionId),
  ]);
  for (const order of settled) {
    const kinds = journals.get(order.transactionId) ?? new Map<string, bigint | null>();
    const expected = EXPECTED_KINDS[order.status] ?? [];
    const actual = [...kinds.keys()].sort();
    const amountsOk = [...kinds.values()].every((amount) => amount === order.amountMinor);
    if (expected.join(',') !== actual.join(',') || !amountsOk) {
      findings.push({
        category: 'ledger_journals_mismatch',
        subject: `order:${order.orderId}`,
        orderId: order.orderId,
        accountId: order.accountId,
        transactionId: order.transactionId,
        currency: order.currency,
        expected: `${expected.join('+')} of ${order.amountMinor} for a ${order.status} order`,
        actual: actual.length === 0 ? 'no journals' : actual.map((k) => `${k} ${kinds.get(k)}`).join(', '),
      });
    }
  }
  for (const credit of snapshot.credits) {
    const deposit = journals.get(credit.transactionId)?.get('deposit');
    if (deposit !== credit.amountMinor) {
      findings.push({
        category: 'ledger_deposit_missing',
        subject: `credit:${credit.transactionId}`,
        accountId: credit.accountId,
        transactionId: credit.transactionId,
        currency: credit.currency,
        expected: `deposit of ${credit.amountMinor}`,
        actual: deposit === undefined ? 'no deposit journal' : `deposit of ${deposit}`,
      });
    }
  }
  const atRest = snapshot.accounts.filter((a) => a.updatedAt <= window.until.getTime());
  for (let i = 0; i < atRest.length; i += 5_000) {
    const chunk = atRest.slice(i, i + 5_000);
    const wallets = new Map(
      (
        await databases.ledger.any(sql.type(WalletRow)`
      select external_id as "externalId", balance_minor as "balanceMinor" from ledger_accounts
       where kind = 'user_wallet' and external_id = any(${sql.array(
         chunk.map((a) => a.accountId),
         'uuid',
       )})`)
      ).map((w) => [w.externalId, w.balanceMinor]),
    );
    for (const a of chunk) {
      const walletNormal = -(wallets.get(a.accountId) ?? 0n);
      if (walletNormal !== a.availableMinor) {
        findings.push({
          category: 'wallet_mismatch',
          subject: `account:${a.accountId}`,
          accountId: a.accountId,
          currency: a.currency,
          expected: `ledger wallet = available ${a.availableMinor}`,
          actual: `ledger wallet ${walletNormal}`,
        });
      }
    }
  }
  return findings;
}

async function ledgerFindings(ledger: DatabasePool, window: Window): Promise<{ findings: Finding[]; checked: string[] }> {
  const findings: Finding[] = [];
  const unbalanced = await ledger.any(sql.type(z.object({ journalId: z.bigint(), currency: z.string(), total: z.bigint() }))`
    select e.journal_id as "journalId", e.currency, sum(e.amount_minor)::bigint as total
      from entries e join journal_transactions j on j.id = e.journal_id
     where ${window.from === null ? sql.fragment`true` : sql.fragment`j.created_at > ${window.from.toISOString()}::timestamptz`}
     group by e.journal_id, e.currency having sum(e.amount_minor) <> 0`);
  for (const u of unbalanced) {
    findings.push({
      category: 'journal_unbalanced',
      subject: `journal:${u.journalId}`,
      currency: u.currency,
      expected: '0',
      actual: String(u.total),
    });
  }
  const projections = await ledger.any(sql.type(
    z.object({ code: z.string(), currency: z.string(), balanceMinor: z.bigint(), entriesMinor: z.bigint() }),
  )`
    select la.code, la.currency, la.balance_minor as "balanceMinor",
           coalesce((select sum(e.amount_minor) from entries e where e.ledger_account_id = la.id), 0)::bigint as "entriesMinor"
      from ledger_accounts la
     where ${
       window.from === null
         ? sql.fragment`true`
         : sql.fragment`exists (select 1 from entries e where e.ledger_account_id = la.id and e.created_at > ${window.from.toISOString()}::timestamptz)`
     }`);
  for (const p of projections) {
    if (p.balanceMinor !== p.entriesMinor) {
      findings.push({
        category: 'ledger_account_projection',
        subject: `ledger-account:${p.code}`,
        currency: p.currency,
        expected: `sum of entries ${p.entriesMinor}`,
        actual: `balance ${p.balanceMinor}`,
      });
    }
  }
  return { findings, checked: projections.map((p) => `ledger-account:${p.code}`) };
}

type ProviderCursor = { at: string; orderId: string } | null;

const FinalOrderRow = OrderRow.extend({ updatedAtText: z.string() });

/**
 * Orders × provider, with a cursor of their own: final orders after the previous run's cursor in
 * (updated_at, id) order, at most `limit` per run. The cursor only moves past orders the provider
 * actually answered for, so an order is never skipped by a busy window or a provider timeout.
 */
async function providerFindings(
  balance: DatabasePool,
  reads: DatabasePool,
  psp: PspAdapter,
  until: Date,
  limit: number,
  full: boolean,
): Promise<{ findings: Finding[]; checked: string[]; cursor: ProviderCursor }> {
  const previous: ProviderCursor = full
    ? null
    : await balance.maybeOne(sql.type(z.object({ at: z.string(), orderId: z.string() }))`
    select to_char(provider_checked_until at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as at,
           provider_checked_until_order as "orderId"
      from reconciliation_runs where provider_checked_until is not null and error is null
     order by id desc limit 1`);
  const orders = await reads.any(sql.type(FinalOrderRow)`
    select o.id as "orderId", o.transaction_id as "transactionId", o.account_id as "accountId", o.currency,
           o.amount_minor as "amountMinor", o.status, o.updated_at as "updatedAt",
           to_char(o.updated_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as "updatedAtText"
      from withdraw_orders o
     where o.status in ('success', 'failed') and o.updated_at <= ${until.toISOString()}::timestamptz
       and ${
         previous === null
           ? sql.fragment`true`
           : sql.fragment`(o.updated_at, o.id) > (${previous.at}::timestamptz, ${previous.orderId}::uuid)`
       }
     order by o.updated_at, o.id limit ${limit}`);
  const findings: Finding[] = [];
  const answered = new Array<boolean>(orders.length).fill(false);
  let next = 0;
  const work = async () => {
    while (next < orders.length) {
      const index = next++;
      const order = orders[index]!;
      const lookup = await psp.getPayout(order.transactionId);
      if (lookup.kind === 'unknown') continue; // nothing learned: this order is asked again next run
      answered[index] = true;
      const providerStatus = lookup.kind === 'found' ? lookup.status : 'not_found';
      const base = {
        subject: `order:${order.orderId}`,
        orderId: order.orderId,
        accountId: order.accountId,
        transactionId: order.transactionId,
        currency: order.currency,
        details: { providerStatus },
      };
      if (order.status === 'success' && providerStatus !== 'paid') {
        findings.push({ ...base, category: 'provider_not_paid', expected: 'provider: paid', actual: `provider: ${providerStatus}` });
      } else if (order.status === 'failed' && providerStatus === 'paid') {
        findings.push({ ...base, category: 'provider_paid_not_recorded', expected: 'provider: not paid', actual: 'provider: paid' });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(PROVIDER_CHECK_CONCURRENCY, orders.length) }, work));
  const firstUnanswered = answered.indexOf(false);
  const lastAnswered = (firstUnanswered === -1 ? orders.length : firstUnanswered) - 1;
  const cursor = lastAnswered >= 0 ? { at: orders[lastAnswered]!.updatedAtText, orderId: orders[lastAnswered]!.orderId } : previous;
  return { findings, checked: orders.filter((_o, i) => answered[i]).map((o) => `order:${o.orderId}`), cursor };
}

/**
 * The Balance DB snapshot came first and the ledger was read after it: an account or order that
 * moved in between would look broken when it is not. Findings on subjects that changed since the
 * snapshot are dropped; the next run sees them at rest.
 */
async function withoutMovedSubjects(
  balance: DatabasePool,
  findings: readonly Finding[],
  snapshot: Awaited<ReturnType<typeof balanceSide>>,
): Promise<Finding[]> {
  const accountIds = findings.filter((f) => f.category === 'wallet_mismatch').map((f) => f.accountId!);
  const orderIds = findings.filter((f) => f.category === 'ledger_journals_mismatch').map((f) => f.orderId!);
  const accountsNow = new Map(
    (
      await balance.any(sql.type(z.object({ id: z.string(), updatedAt: z.number() }))`
    select id, updated_at as "updatedAt" from accounts where id = any(${sql.array(accountIds, 'uuid')})`)
    ).map((a) => [a.id, a.updatedAt]),
  );
  const ordersNow = new Map(
    (
      await balance.any(sql.type(z.object({ id: z.string(), status: z.string(), updatedAt: z.number() }))`
    select id, status, updated_at as "updatedAt" from withdraw_orders where id = any(${sql.array(orderIds, 'uuid')})`)
    ).map((o) => [o.id, o]),
  );
  const accountsThen = new Map(snapshot.accounts.map((a) => [a.accountId, a.updatedAt]));
  const ordersThen = new Map(snapshot.orders.map((o) => [o.orderId, o]));
  return findings.filter((f) => {
    if (f.category === 'wallet_mismatch') return accountsNow.get(f.accountId!) === accountsThen.get(f.accountId!);
    if (f.category === 'ledger_journals_mismatch') {
      const now = ordersNow.get(f.orderId!);
      const then = ordersThen.get(f.orderId!);
      return now !== undefined && then !== undefined && now.status === then.status && now.updatedAt === then.updatedAt;
    }
    return true;
  });
}

async function recordFindings(
  balance: DatabasePool,
  runId: bigint,
  findings: readonly Finding[],
  checked: ReadonlyMap<RunCategory, readonly string[]>,
) {
  return balance.transaction(async (tx) => {
    for (const f of findings) {
      await tx.query(sql.unsafe`
        select reconciliation_record_break(${f.category}, ${f.subject}, ${f.orderId ?? null}, ${f.accountId ?? null},
          ${f.transactionId ?? null}, ${f.currency ?? null}, ${f.expected}, ${f.actual},
          ${sql.jsonb({ ...(f.details ?? {}), runId: runId.toString() } as Parameters<typeof sql.jsonb>[0])})`);
    }
    let resolved = 0;
    for (const [category, subjects] of checked) {
      const stillBroken = findings.filter((f) => f.category === category).map((f) => f.subject);
      for (let i = 0; i < subjects.length; i += 5_000) {
        const chunk = subjects.slice(i, i + 5_000);
        const rows = await tx.any(sql.type(z.object({ id: z.bigint() }))`
          update reconciliation_breaks set resolved_at = now(), resolution = ${`cleared: not observed by reconciliation run ${runId}`}
           where resolved_at is null and category = ${category}
             and subject = any(${sql.array([...chunk], 'text')}) and not (subject = any(${sql.array(stillBroken, 'text')}))
          returning id`);
        resolved += rows.length;
      }
    }
    return resolved;
  });
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
  const window = await chooseWindow(balance, deps.mode, deps.config.recovery.reconcileSettleMs, deps.now ?? new Date());
  const runId = await balance.oneFirst(sql.type(z.object({ id: z.bigint() }))`
    insert into reconciliation_runs (mode, checked_until, checked_from)
    values (${deps.mode}, ${window.until.toISOString()}, ${window.from?.toISOString() ?? null}) returning id`);
  try {
    await awaitConsistentPoint(deps.databases, reads, deps.config.database.replicaWaitMs);
    const snapshot = await balanceSide(reads.balance, window);
    const ledgerSide = await ledgerFindings(reads.ledger, window);
    const cross = await withoutMovedSubjects(balance, await crossFindings(reads, snapshot, window), snapshot);
    const provider = deps.psp
      ? await providerFindings(
          balance,
          reads.balance,
          deps.psp,
          window.until,
          deps.config.recovery.reconcileProviderChecksMax,
          deps.mode === 'full',
        )
      : { findings: [], checked: [], cursor: null };
    const findings = [...balanceFindings(snapshot.accounts), ...ledgerSide.findings, ...cross, ...provider.findings];
    const accountSubjects = snapshot.accounts.map((a) => `account:${a.accountId}`);
    const atRestSubjects = snapshot.accounts.filter((a) => a.updatedAt <= window.until.getTime()).map((a) => `account:${a.accountId}`);
    const settledOrders = snapshot.orders.filter((o) => o.updatedAt <= window.until.getTime()).map((o) => `order:${o.orderId}`);
    const checked = new Map<RunCategory, readonly string[]>([
      ['account_balance_split', accountSubjects],
      ['account_reserved_mismatch', accountSubjects],
      ['account_balance_mismatch', accountSubjects],
      ['wallet_mismatch', atRestSubjects],
      ['ledger_journals_mismatch', settledOrders],
      ['ledger_deposit_missing', snapshot.credits.map((c) => `credit:${c.transactionId}`)],
      ['ledger_account_projection', ledgerSide.checked],
      ['provider_not_paid', provider.checked],
      ['provider_paid_not_recorded', provider.checked],
    ]);
    const breaksResolved = await recordFindings(balance, runId, findings, checked);
    await balance.query(sql.unsafe`
      update reconciliation_runs set finished_at = now(), accounts_checked = ${snapshot.accounts.length},
             orders_checked = ${snapshot.orders.length}, provider_checked = ${provider.checked.length},
             breaks_found = ${findings.length}, breaks_resolved = ${breaksResolved},
             provider_checked_until = ${provider.cursor?.at ?? null}::timestamptz,
             provider_checked_until_order = ${provider.cursor?.orderId ?? null}::uuid
       where id = ${runId}`);
    const summary: RunSummary = {
      runId: runId.toString(),
      mode: deps.mode,
      checkedFrom: window.from?.toISOString() ?? null,
      checkedUntil: window.until.toISOString(),
      accountsChecked: snapshot.accounts.length,
      ordersChecked: snapshot.orders.length,
      providerChecked: provider.checked.length,
      findings,
      breaksResolved,
    };
    if (findings.length > 0) deps.logger.warn({ runId: summary.runId, breaks: findings.length }, 'reconciliation found breaks');
    return summary;
  } catch (error) {
    await balance
      .query(sql.unsafe`
      update reconciliation_runs set finished_at = now(), error = ${String((error as Error).message).slice(0, 1000)} where id = ${runId}`)
      .catch(() => {});
    throw error;
  }
}
