// A wallet's statement from the Ledger DB: the ledger account 'wallet:<accountId>', its balance at
// both ends of the period (ledger_account_balance_at: checkpoint plus at most a day of entries) and
// the entries between, in the account's own sequence, paged. Signs are the ledger's here (debit
// positive; a wallet, a liability, is negative while the platform owes the user); the route turns
// them into the user's view.
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { CURRENCIES } from '../money/money.ts';

const WalletRow = z.object({ id: z.bigint(), currency: z.enum(CURRENCIES) });
const BalanceAtRow = z.object({ balanceMinor: z.bigint(), accountSequence: z.bigint() });
const EntryRow = z.object({
  entryId: z.bigint(),
  accountSequence: z.bigint(),
  transactionId: z.string(),
  kind: z.enum(['deposit', 'hold', 'settle', 'reverse']),
  amountMinor: z.bigint(),
  balanceAfterMinor: z.bigint(),
  at: z.number(),
});
export type StatementEntryRow = z.infer<typeof EntryRow>;

export type LedgerStatement = Readonly<{
  /** null: the wallet has no ledger entries yet */
  currency: z.infer<typeof WalletRow>['currency'] | null;
  openingMinor: bigint;
  closingMinor: bigint;
  entries: readonly StatementEntryRow[];
}>;

/**
 * The entries posted in [from, to) after sequence `afterSequence`, at most `limit`, with the
 * balances at `from` and `to`; one repeatable-read snapshot, so a page's balances and entries agree.
 */
export async function readStatement(
  ledger: DatabasePool,
  p: Readonly<{ accountId: string; from: string | null; to: string; afterSequence: bigint; limit: number }>,
): Promise<LedgerStatement> {
  return ledger.transaction(async (tx) => {
    await tx.query(sql.unsafe`set transaction isolation level repeatable read, read only`);
    const wallet = await tx.maybeOne(sql.type(WalletRow)`
      select id, currency from ledger_accounts where code = ${`wallet:${p.accountId}`} and kind = 'user_wallet'`);
    if (!wallet) return { currency: null, openingMinor: 0n, closingMinor: 0n, entries: [] };
    const balanceAt = (at: string | null) =>
      tx.one(sql.type(BalanceAtRow)`
        select balance_minor as "balanceMinor", account_sequence as "accountSequence"
          from ledger_account_balance_at(${wallet.id}, ${at ?? '-infinity'}::timestamptz)`);
    const opening = await balanceAt(p.from);
    const closing = await balanceAt(p.to);
    // bigints: not Math.max
    let after = p.afterSequence;
    if (opening.accountSequence > after) after = opening.accountSequence;
    const entries = await tx.any(sql.type(EntryRow)`
      select e.id as "entryId", e.account_sequence as "accountSequence", j.transaction_id as "transactionId", j.kind,
             e.amount_minor as "amountMinor", e.current_balance_minor as "balanceAfterMinor", e.created_at as at
        from entries e join journal_transactions j on j.id = e.journal_id
       where e.ledger_account_id = ${wallet.id}
         and e.account_sequence > ${after} and e.account_sequence <= ${closing.accountSequence}
       order by e.account_sequence
       limit ${p.limit}`);
    return { currency: wallet.currency, openingMinor: opening.balanceMinor, closingMinor: closing.balanceMinor, entries };
  });
}
