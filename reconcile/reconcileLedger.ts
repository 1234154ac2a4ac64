// The Ledger DB half of reconciliation (reconcile/reconcileRun.ts): the journals of the orders and
// deposits a run looks at, the wallets of its accounts, and the ledger's own consistency over the
// entries of the window. Every read is bounded by what the window holds, through an index: no
// read sums an account's whole history (`--full` excepted, which is meant to).
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import type { Finding } from './breakQueries.ts';

export type Window = Readonly<{ from: Date | null; until: Date }>;

const JournalRow = z.object({ transactionId: z.string(), kind: z.string(), walletAmountMinor: z.bigint().nullable() });
const CHUNK = 5_000;

/** transaction id → journal kind → the amount it moved (through journal_transactions' unique key). */
export async function ledgerJournals(ledger: CommonQueryMethods, transactionIds: readonly string[]) {
  const byTx = new Map<string, Map<string, bigint | null>>();
  for (let i = 0; i < transactionIds.length; i += CHUNK) {
    const chunk = transactionIds.slice(i, i + CHUNK);
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

const EXPECTED_KINDS: Readonly<Record<string, readonly string[]>> = {
  init: ['hold'],
  processing: ['hold'],
  manual: ['hold'],
  success: ['hold', 'settle'],
  failed: ['hold', 'reverse'],
};

export type OrderFacts = Readonly<{
  orderId: string;
  transactionId: string;
  accountId: string;
  currency: string;
  amountMinor: bigint;
  status: string;
}>;

export function journalFindings(orders: readonly OrderFacts[], journals: Map<string, Map<string, bigint | null>>): Finding[] {
  const findings: Finding[] = [];
  for (const order of orders) {
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
  return findings;
}

export type CreditFacts = Readonly<{ transactionId: string; accountId: string; amountMinor: bigint; currency: string }>;

export function depositFindings(credits: readonly CreditFacts[], journals: Map<string, Map<string, bigint | null>>): Finding[] {
  const findings: Finding[] = [];
  for (const credit of credits) {
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
  return findings;
}

const WalletRow = z.object({ code: z.string(), balanceMinor: z.bigint() });

/** I5 for accounts at rest: the ledger wallet (through its unique code) equals the account's available amount. */
export async function walletFindings(
  ledger: CommonQueryMethods,
  accounts: ReadonlyArray<Readonly<{ accountId: string; currency: string; availableMinor: bigint }>>,
): Promise<Finding[]> {
  const findings: Finding[] = [];
  for (let i = 0; i < accounts.length; i += CHUNK) {
    const chunk = accounts.slice(i, i + CHUNK);
    const rows = await ledger.any(sql.type(WalletRow)`
      select code, balance_minor as "balanceMinor" from ledger_accounts
       where code = any(${sql.array(
         chunk.map((a) => `wallet:${a.accountId}`),
         'text',
       )})`);
    const wallets = new Map(rows.map((w) => [w.code, w.balanceMinor]));
    for (const a of chunk) {
      const walletNormal = -(wallets.get(`wallet:${a.accountId}`) ?? 0n);
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

const inWindow = (window: Window) =>
  window.from === null
    ? sql.fragment`e.created_at <= ${window.until.toISOString()}::timestamptz`
    : sql.fragment`e.created_at > ${window.from.toISOString()}::timestamptz and e.created_at <= ${window.until.toISOString()}::timestamptz`;

const ProjectionRow = z.object({ code: z.string(), currency: z.string(), expected: z.string(), actual: z.string() });

/**
 * I4 over the window's entries: each journal posted in it balances per currency with at least two
 * entries; each entry continues its account's chain (its previous balance is the current balance
 * of the account's entry before it); and each account posted to holds its last entry's balance and
 * count. With the per-entry CHECK (current = previous + amount) and the unique sequence, that keeps
 * every account's balance equal to the sum of its entries without summing them. `full` sums them.
 */
export async function ledgerFindings(
  ledger: CommonQueryMethods,
  window: Window,
  full: boolean,
): Promise<{ findings: Finding[]; checked: string[] }> {
  const findings: Finding[] = [];
  const unbalanced = await ledger.any(sql.type(z.object({ journalId: z.bigint(), currency: z.string(), total: z.bigint() }))`
    select e.journal_id as "journalId", e.currency, sum(e.amount_minor)::bigint as total
      from entries e where ${full ? sql.fragment`true` : inWindow(window)}
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
  if (full) {
    const sums = await ledger.any(sql.type(
      z.object({ code: z.string(), currency: z.string(), balanceMinor: z.bigint(), entriesMinor: z.bigint() }),
    )`
      select la.code, la.currency, la.balance_minor as "balanceMinor",
             coalesce((select sum(e.amount_minor) from entries e where e.ledger_account_id = la.id), 0)::bigint as "entriesMinor"
        from ledger_accounts la`);
    for (const p of sums) {
      if (p.balanceMinor === p.entriesMinor) continue;
      findings.push({
        category: 'ledger_account_projection',
        subject: `ledger-account:${p.code}`,
        currency: p.currency,
        expected: `sum of entries ${p.entriesMinor}`,
        actual: `balance ${p.balanceMinor}`,
      });
    }
  } else {
    // every row is a break: a projection that is not its last entry, or an entry of the window that
    // does not open where its predecessor closed
    const broken = await ledger.any(sql.type(ProjectionRow)`
      with touched as (select distinct e.ledger_account_id as id from entries e where ${inWindow(window)})
      select la.code, la.currency,
             'last entry: sequence ' || coalesce(last.account_sequence, 0) || ', balance ' || coalesce(last.current_balance_minor, 0) as expected,
             'projection: entry_count ' || la.entry_count || ', balance ' || la.balance_minor as actual
        from touched t
        join ledger_accounts la on la.id = t.id
        left join lateral (
          select e.account_sequence, e.current_balance_minor from entries e
           where e.ledger_account_id = la.id order by e.account_sequence desc limit 1
        ) last on true
       where last.account_sequence is distinct from la.entry_count or last.current_balance_minor is distinct from la.balance_minor
      union all
      select la.code, la.currency,
             'entry ' || e.account_sequence || ' opens at ' || coalesce(prev.current_balance_minor, 0) as expected,
             'it opens at ' || e.previous_balance_minor as actual
        from entries e
        join ledger_accounts la on la.id = e.ledger_account_id
        left join entries prev on prev.ledger_account_id = e.ledger_account_id and prev.account_sequence = e.account_sequence - 1
       where ${inWindow(window)} and e.previous_balance_minor <> coalesce(prev.current_balance_minor, 0)`);
    for (const p of broken) {
      findings.push({
        category: 'ledger_account_projection',
        subject: `ledger-account:${p.code}`,
        currency: p.currency,
        expected: p.expected,
        actual: p.actual,
      });
    }
  }
  // the accounts looked at: all (full), or those posted to in the window
  const checked = full
    ? await ledger.anyFirst(sql.type(z.object({ code: z.string() }))`select code from ledger_accounts`)
    : await ledger.anyFirst(sql.type(z.object({ code: z.string() }))`
        select la.code from ledger_accounts la where la.id in (select distinct e.ledger_account_id from entries e where ${inWindow(window)})`);
  return { findings, checked: checked.map((code) => `ledger-account:${code}`) };
}
