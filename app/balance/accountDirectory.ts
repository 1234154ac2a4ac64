// Who owns an account and in which currency it is never changes, so the web process keeps those
// facts in memory and the hot path does not ask the database for them. A user's list of accounts
// can grow, so that list is kept only briefly. Status (frozen, closed) is always checked by the
// database inside the withdraw transaction, never from here.
import { LRUCache } from 'lru-cache';
import type { CommonQueryMethods } from 'slonik';
import type { Currency } from '../money/money.ts';
import { findAccount, listUserAccountFacts } from './accountQueries.ts';

export type AccountFacts = Readonly<{ accountId: string; userId: string; currency: Currency }>;

export type AccountDirectorySettings = Readonly<{ factsSizeMax: number; userListTtlMs: number }>;

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function createAccountDirectory(db: CommonQueryMethods, settings: AccountDirectorySettings) {
  const facts = new LRUCache<string, AccountFacts>({ max: Math.max(1, settings.factsSizeMax) });
  const userLists = new LRUCache<string, readonly AccountFacts[]>({
    max: Math.max(1, settings.factsSizeMax),
    ttl: Math.max(1, settings.userListTtlMs),
  });

  function toFacts(row: AccountFacts): AccountFacts {
    return { accountId: row.accountId, userId: row.userId, currency: row.currency };
  }

  async function byId(accountId: string): Promise<AccountFacts | null> {
    if (!UUID_PATTERN.test(accountId)) return null;
    const key = accountId.toLowerCase();
    const cached = facts.get(key);
    if (cached) return cached;
    const row = await findAccount(db, key);
    if (!row) return null;
    const found = toFacts(row);
    facts.set(key, found);
    return found;
  }

  async function ofUser(userId: string): Promise<readonly AccountFacts[]> {
    const cached = userLists.get(userId);
    if (cached) return cached;
    const rows = (await listUserAccountFacts(db, userId)).map(toFacts);
    userLists.set(userId, rows);
    for (const row of rows) facts.set(row.accountId, row);
    return rows;
  }

  /** Called when this process creates an account, so its owner's list is fresh here at once. */
  function forgetUser(userId: string): void {
    userLists.delete(userId);
  }

  return { byId, ofUser, forgetUser };
}

export type AccountDirectory = ReturnType<typeof createAccountDirectory>;
