// Wallet accounts on the Balance DB.
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { CURRENCIES, type Currency } from '../money/money.ts';

export const AccountRow = z.object({
  accountId: z.string(),
  userId: z.string(),
  currency: z.enum(CURRENCIES),
  status: z.enum(['active', 'frozen', 'closed']),
  balanceMinor: z.bigint(),
  availableMinor: z.bigint(),
  reservedMinor: z.bigint(),
  createdAt: z.number(),
  updatedAt: z.number(),
});
export type AccountRow = z.infer<typeof AccountRow>;

const accountColumns = sql.fragment`
  id as "accountId", user_id as "userId", currency, status, balance_minor as "balanceMinor",
  available_minor as "availableMinor", reserved_minor as "reservedMinor",
  created_at as "createdAt", updated_at as "updatedAt"`;

export async function insertAccount(db: CommonQueryMethods, input: { userId: string; currency: Currency }): Promise<AccountRow> {
  return db.one(sql.type(AccountRow)`
    insert into accounts (user_id, currency) values (${input.userId}, ${input.currency})
    returning ${accountColumns}`);
}

export async function findAccount(db: CommonQueryMethods, accountId: string): Promise<AccountRow | null> {
  return db.maybeOne(sql.type(AccountRow)`select ${accountColumns} from accounts where id = ${accountId}`);
}

export const AccountFactsRow = z.object({ accountId: z.string(), userId: z.string(), currency: z.enum(CURRENCIES) });
export type AccountFactsRow = z.infer<typeof AccountFactsRow>;

export async function listUserAccountFacts(db: CommonQueryMethods, userId: string): Promise<readonly AccountFactsRow[]> {
  return db.any(sql.type(AccountFactsRow)`
    select id as "accountId", user_id as "userId", currency from accounts
     where user_id = ${userId} and status <> 'closed' order by created_at, id limit 100`);
}

export async function setAccountStatus(
  db: CommonQueryMethods,
  accountId: string,
  status: AccountRow['status'],
): Promise<AccountRow | null> {
  return db.maybeOne(sql.type(AccountRow)`
    update accounts set status = ${status}, updated_at = now(), version = version + 1
     where id = ${accountId} returning ${accountColumns}`);
}

const CreditResultRow = z.object({
  outcome: z.enum(['credited', 'replay', 'mismatch', 'account_not_found', 'account_unusable']),
  accountId: z.string().nullable(),
  userId: z.string().nullable(),
  currency: z.enum(CURRENCIES).nullable(),
  status: z.enum(['active', 'frozen', 'closed']).nullable(),
  balanceMinor: z.bigint().nullable(),
  availableMinor: z.bigint().nullable(),
  reservedMinor: z.bigint().nullable(),
});

export type AccountBalances = Pick<
  AccountRow,
  'accountId' | 'userId' | 'currency' | 'status' | 'balanceMinor' | 'availableMinor' | 'reservedMinor'
>;
export type CreditResult =
  | { readonly outcome: 'credited' | 'replay'; readonly account: AccountBalances }
  | { readonly outcome: 'mismatch' | 'account_not_found' | 'account_unusable' };

export async function creditAccount(
  db: CommonQueryMethods,
  input: { transactionId: string; accountId: string; amountMinor: bigint; actor: string },
): Promise<CreditResult> {
  const row = await db.one(sql.type(CreditResultRow)`
    select outcome, account_id as "accountId", user_id as "userId", currency, status,
           balance_minor as "balanceMinor", available_minor as "availableMinor", reserved_minor as "reservedMinor"
      from account_credit(${input.transactionId}, ${input.accountId}, ${input.amountMinor}, ${input.actor})`);
  if (row.outcome !== 'credited' && row.outcome !== 'replay') return { outcome: row.outcome };
  const { accountId, userId, currency, status, balanceMinor, availableMinor, reservedMinor } = row;
  if (
    accountId === null ||
    userId === null ||
    currency === null ||
    status === null ||
    balanceMinor === null ||
    availableMinor === null ||
    reservedMinor === null
  ) {
    throw new Error(`account_credit(${input.transactionId}) returned ${row.outcome} without the account`);
  }
  return { outcome: row.outcome, account: { accountId, userId, currency, status, balanceMinor, availableMinor, reservedMinor } };
}

/**
 * Accounts in id order after `afterId` (keyset): one user's (the accounts_user_id_idx range, a user
 * has a handful), or everyone's for an admin (the primary key).
 */
export async function listAccounts(
  db: CommonQueryMethods,
  filter: Readonly<{ userId: string | null }>,
  afterId: string | null,
  limit: number,
): Promise<readonly AccountRow[]> {
  const conditions = [sql.fragment`true`];
  if (filter.userId !== null) conditions.push(sql.fragment`user_id = ${filter.userId}`);
  if (afterId !== null) conditions.push(sql.fragment`id > ${afterId}::uuid`);
  return db.any(sql.type(AccountRow)`
    select ${accountColumns} from accounts where ${sql.join(conditions, sql.fragment` and `)} order by id limit ${limit}`);
}
