// The invariants I1–I5 of docs/architecture.md, checked against both databases. Used by the tests, the
// reconciliation run and the chaos run. I5 compares across databases, so it only holds once the
// outboxes have drained (the caller decides when).
//
// Ledger sign convention: amounts are debit-positive, so a user wallet (a liability) has a
// negative balance; its normal balance is the negation. A hold moves money from the wallet to
// withdrawals-in-transit, so the wallet's normal balance equals the account's AVAILABLE amount,
// and wallet + its open holds equals the account's balance.
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { OPEN_STATUSES } from '../app/withdraw/withdrawStateMachine.ts';

export type InvariantViolation = Readonly<{
  invariant: 'I1' | 'I2' | 'I3' | 'I4' | 'I5';
  subject: string;
  expected: string;
  actual: string;
}>;

const AccountCheckRow = z.object({
  accountId: z.string(),
  currency: z.string(),
  balanceMinor: z.bigint(),
  availableMinor: z.bigint(),
  reservedMinor: z.bigint(),
  openOrdersMinor: z.bigint(),
  heldReservationsMinor: z.bigint(),
  creditsMinor: z.bigint(),
  successMinor: z.bigint(),
});

export async function balanceInvariants(balance: DatabasePool): Promise<InvariantViolation[]> {
  const rows = await balance.any(sql.type(AccountCheckRow)`
    select a.id as "accountId", a.currency, a.balance_minor as "balanceMinor", a.available_minor as "availableMinor",
           a.reserved_minor as "reservedMinor",
           coalesce((select sum(o.amount_minor) from withdraw_orders o
                      where o.account_id = a.id and o.status = any(${sql.array([...OPEN_STATUSES], 'text')})), 0)::bigint as "openOrdersMinor",
           coalesce((select sum(r.amount_minor) from reservations r
                      where r.account_id = a.id and r.status = 'held'), 0)::bigint as "heldReservationsMinor",
           coalesce((select sum(c.amount_minor) from credits c where c.account_id = a.id), 0)::bigint as "creditsMinor",
           coalesce((select sum(o.amount_minor) from withdraw_orders o
                      where o.account_id = a.id and o.status = 'success'), 0)::bigint as "successMinor"
      from accounts a`);
  const violations: InvariantViolation[] = [];
  for (const r of rows) {
    const subject = `account:${r.accountId}`;
    if (r.balanceMinor !== r.availableMinor + r.reservedMinor || r.availableMinor < 0n || r.reservedMinor < 0n) {
      violations.push({
        invariant: 'I1',
        subject,
        expected: 'balance = available + reserved, both >= 0',
        actual: `balance ${r.balanceMinor}, available ${r.availableMinor}, reserved ${r.reservedMinor}`,
      });
    }
    if (r.reservedMinor !== r.openOrdersMinor || r.reservedMinor !== r.heldReservationsMinor) {
      violations.push({
        invariant: 'I2',
        subject,
        expected: `reserved ${r.reservedMinor}`,
        actual: `open orders ${r.openOrdersMinor}, held reservations ${r.heldReservationsMinor}`,
      });
    }
    if (r.balanceMinor !== r.creditsMinor - r.successMinor) {
      violations.push({
        invariant: 'I3',
        subject,
        expected: `credits ${r.creditsMinor} - success ${r.successMinor}`,
        actual: `balance ${r.balanceMinor}`,
      });
    }
  }
  return violations;
}

const UnbalancedRow = z.object({ journalId: z.bigint(), currency: z.string(), total: z.bigint() });
const LedgerAccountRow = z.object({
  id: z.bigint(),
  code: z.string(),
  kind: z.string(),
  currency: z.string(),
  externalId: z.string().nullable(),
  balanceMinor: z.bigint(),
  entriesMinor: z.bigint(),
});

export async function ledgerInvariants(ledger: DatabasePool): Promise<InvariantViolation[]> {
  const violations: InvariantViolation[] = [];
  const unbalanced = await ledger.any(sql.type(UnbalancedRow)`
    select journal_id as "journalId", currency, sum(amount_minor)::bigint as total
      from entries group by journal_id, currency having sum(amount_minor) <> 0`);
  for (const u of unbalanced) {
    violations.push({ invariant: 'I4', subject: `journal:${u.journalId}`, expected: '0', actual: `${u.currency} ${u.total}` });
  }
  for (const a of await ledgerAccounts(ledger)) {
    if (a.balanceMinor !== a.entriesMinor) {
      violations.push({
        invariant: 'I4',
        subject: `ledger-account:${a.code}`,
        expected: `sum of entries ${a.entriesMinor}`,
        actual: `balance ${a.balanceMinor}`,
      });
    }
  }
  return violations;
}

async function ledgerAccounts(ledger: DatabasePool) {
  return ledger.any(sql.type(LedgerAccountRow)`
    select la.id, la.code, la.kind, la.currency, la.external_id as "externalId", la.balance_minor as "balanceMinor",
           coalesce((select sum(e.amount_minor) from entries e where e.ledger_account_id = la.id), 0)::bigint as "entriesMinor"
      from ledger_accounts la`);
}

const BalanceSideRow = z.object({ accountId: z.string(), currency: z.string(), availableMinor: z.bigint(), reservedMinor: z.bigint() });

/** I5: only meaningful once both outboxes are drained and their jobs have run. */
export async function crossDatabaseInvariants(balance: DatabasePool, ledger: DatabasePool): Promise<InvariantViolation[]> {
  const violations: InvariantViolation[] = [];
  const accounts = await balance.any(sql.type(BalanceSideRow)`
    select id as "accountId", currency, available_minor as "availableMinor", reserved_minor as "reservedMinor" from accounts`);
  const ledgerRows = await ledgerAccounts(ledger);
  const wallets = new Map(ledgerRows.filter((r) => r.kind === 'user_wallet').map((r) => [r.externalId, r]));
  const inTransit = new Map(ledgerRows.filter((r) => r.kind === 'withdrawals_in_transit').map((r) => [r.currency, r]));
  const reservedByCurrency = new Map<string, bigint>();
  for (const a of accounts) {
    reservedByCurrency.set(a.currency, (reservedByCurrency.get(a.currency) ?? 0n) + a.reservedMinor);
    const walletNormal = -(wallets.get(a.accountId)?.balanceMinor ?? 0n);
    if (walletNormal !== a.availableMinor) {
      violations.push({
        invariant: 'I5',
        subject: `account:${a.accountId}`,
        expected: `ledger wallet = available ${a.availableMinor}`,
        actual: `ledger wallet ${walletNormal}`,
      });
    }
  }
  for (const [currency, reserved] of reservedByCurrency) {
    const transit = -(inTransit.get(currency)?.balanceMinor ?? 0n);
    if (transit !== reserved) {
      violations.push({
        invariant: 'I5',
        subject: `in-transit:${currency}`,
        expected: `sum of reserved ${reserved}`,
        actual: `in transit ${transit}`,
      });
    }
  }
  return violations;
}

export async function allInvariants(balance: DatabasePool, ledger: DatabasePool): Promise<InvariantViolation[]> {
  return [...(await balanceInvariants(balance)), ...(await ledgerInvariants(ledger)), ...(await crossDatabaseInvariants(balance, ledger))];
}
