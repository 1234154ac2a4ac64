// Verifies the Ledger DB from its rows alone (I4 and the hash chains), recomputing everything in
// TypeScript: whoever could change entries could change the database's own functions as well.
//
// Per ledger account, in account_sequence order: sequences 1, 2, 3 … without gaps; each entry's
// previous balance is the previous entry's current balance (0 first) and current = previous +
// amount; previous_hash is the previous entry's hash (null first) and the hash recomputes from
// the input documented in sql/ledger/0002_ledger_post.sql; the account's projection (balance,
// entry count, last hash) matches its last entry; every entry is in its account's currency.
// Per journal transaction: at least two entries, summing to zero per currency.
// Per account and closed UTC day (sql/ledger/0006_checkpoints.sql): created_at never decreases
// along the sequence; every day with entries has its checkpoint, whose opening and closing
// balances, debits, credits, entry count and last sequence are those of the day's entries; no
// checkpoint exists without entries. Per closed day, currency and account kind: the totals are the
// sums of the entries, opening at the previous day's closing; every closed day has its days row.
//
// Everything is read in one REPEATABLE READ, READ ONLY transaction (one snapshot, so postings
// made meanwhile cannot look like breaks), in keyset-paged batches. Every break is reported,
// up to a bound, and the count of all of them is kept.
import { createHash } from 'node:crypto';
import { sql, type DatabaseTransactionConnection, type DatabasePool } from 'slonik';
import { z } from 'zod';
import {
  checkpointPage,
  CheckpointCheck,
  closedDays,
  DayTotals,
  dayText,
  verifyClosedDays,
  type CheckpointBreak,
  type CheckpointRow,
  type ClosedDays,
} from './ledgerVerifyCheckpoints.ts';

export const LEDGER_VERIFY_BATCH_SIZE_DEFAULT = 1_000;
export const LEDGER_VERIFY_BATCH_SIZE_MAX = 10_000;
export const LEDGER_VERIFY_BREAKS_DEFAULT = 1_000;
export const LEDGER_VERIFY_BREAKS_MAX = 100_000;

export type LedgerBreakKind =
  | 'sequence' // not the previous sequence + 1 (or 1 first): an entry is missing or duplicated
  | 'previous_balance' // previous_balance_minor is not the previous entry's current balance
  | 'running_balance' // current_balance_minor is not previous + amount
  | 'amount_zero'
  | 'previous_hash' // previous_hash is not the previous entry's hash
  | 'hash' // the hash does not recompute from the entry's fields
  | 'currency' // the entry is not in its account's currency
  | 'journal_missing' // the entry's journal transaction does not exist
  | 'account_missing' // the entry's ledger account does not exist
  | 'account_balance' // ledger_accounts.balance_minor is not the last entry's current balance
  | 'account_entry_count' // ledger_accounts.entry_count is not the last entry's sequence
  | 'account_last_hash' // ledger_accounts.last_entry_hash is not the last entry's hash
  | 'journal_entries_too_few' // a journal transaction with fewer than two entries
  | 'journal_unbalanced' // a journal transaction whose entries do not sum to zero in a currency
  | 'created_at_order' // an entry dated before the previous entry of its account
  | 'checkpoint_missing' // a closed day with entries of an account, and no checkpoint for it
  | 'checkpoint_mismatch' // a checkpoint whose figures are not those of the day's entries
  | 'checkpoint_orphan' // a checkpoint of a day on which its account has no entries
  | 'checkpoint_totals' // a currency and kind's totals for a closed day differ from its entries
  | 'checkpoint_day'; // a closed day's row is missing or its counts differ from its entries

export type LedgerBreak = Readonly<{
  kind: LedgerBreakKind;
  /** null for a journal's break (it spans accounts) */
  accountCode: string | null;
  /** the entry's account_sequence; for an account's projection, its last entry's (null: none) */
  sequence: bigint | null;
  entryId: bigint | null;
  journalId: bigint | null;
  /** the UTC day (YYYY-MM-DD) of a checkpoint's break; null for the others */
  day: string | null;
  expected: string;
  found: string;
}>;

export type LedgerVerification = Readonly<{
  accountsChecked: number;
  entriesChecked: number;
  journalsChecked: number;
  /** checkpoints (account and day) compared with their entries */
  checkpointsChecked: number;
  /** the last closed day (YYYY-MM-DD), null when none is */
  closedThrough: string | null;
  /** every break found; `breaks` holds the first `breaksMax` of them */
  breakCount: number;
  breaks: readonly LedgerBreak[];
  clean: boolean;
}>;

export type LedgerVerifyOptions = Readonly<{ batchSizeMax?: number; breaksMax?: number }>;

const AccountRow = z.object({
  id: z.bigint(),
  code: z.string(),
  kind: z.string(),
  currency: z.string(),
  balanceMinor: z.bigint(),
  entryCount: z.bigint(),
  lastEntryHash: z.string().nullable(),
});
type AccountRow = z.infer<typeof AccountRow>;

const EntryRow = z.object({
  id: z.bigint(),
  accountId: z.bigint(),
  sequence: z.bigint(),
  journalId: z.bigint(),
  transactionId: z.string().nullable(),
  journalKind: z.string().nullable(),
  amountMinor: z.bigint(),
  currency: z.string(),
  previousBalanceMinor: z.bigint(),
  currentBalanceMinor: z.bigint(),
  previousHash: z.string().nullable(),
  hash: z.string(),
  createdAtUs: z.bigint(),
});
type EntryRow = z.infer<typeof EntryRow>;

const JournalRow = z.object({ id: z.bigint() });
const JournalEntryRow = z.object({ journalId: z.bigint(), currency: z.string(), amountMinor: z.bigint() });

/** The hash input of sql/ledger/0002_ledger_post.sql, reproduced without the database's help. */
export function ledgerEntryHash(
  entry: Omit<EntryRow, 'id' | 'hash' | 'transactionId' | 'journalKind'> & {
    transactionId: string;
    journalKind: string;
  },
): string {
  const input = [
    entry.previousHash ?? '',
    entry.accountId,
    entry.sequence,
    entry.journalId,
    entry.transactionId,
    entry.journalKind,
    entry.amountMinor,
    entry.currency,
    entry.previousBalanceMinor,
    entry.currentBalanceMinor,
    entry.createdAtUs,
  ].join('|');
  return createHash('sha256').update(input, 'utf8').digest('hex');
}

class BreakLog {
  readonly breaks: LedgerBreak[] = [];
  count = 0;
  constructor(private readonly max: number) {}
  add(entry: Omit<LedgerBreak, 'day'> & { day?: string | null }): void {
    this.count += 1;
    if (this.breaks.length < this.max) this.breaks.push({ ...entry, day: entry.day ?? null });
  }
  readonly addCheckpoint = (b: CheckpointBreak): void => this.add({ ...b, entryId: null, journalId: null });
}

export async function verifyLedger(ledger: DatabasePool, options: LedgerVerifyOptions = {}): Promise<LedgerVerification> {
  const batchSizeMax = bounded('batchSizeMax', options.batchSizeMax ?? LEDGER_VERIFY_BATCH_SIZE_DEFAULT, LEDGER_VERIFY_BATCH_SIZE_MAX);
  const breaksMax = bounded('breaksMax', options.breaksMax ?? LEDGER_VERIFY_BREAKS_DEFAULT, LEDGER_VERIFY_BREAKS_MAX);
  return ledger.transaction(async (tx) => {
    await tx.query(sql.unsafe`set transaction isolation level repeatable read, read only`);
    const log = new BreakLog(breaksMax);
    const closed = await closedDays(tx);
    const totals = new DayTotals();
    const chains = await verifyChains(tx, batchSizeMax, log, closed, totals);
    const journalsChecked = await verifyJournals(tx, batchSizeMax, log);
    await verifyClosedDays(tx, closed, totals, log.addCheckpoint);
    return {
      ...chains,
      journalsChecked,
      closedThrough: closed.last === null ? null : dayText(closed.last),
      breakCount: log.count,
      breaks: log.breaks,
      clean: log.count === 0,
    };
  });
}

function bounded(name: string, value: number, max: number): number {
  if (!Number.isInteger(value) || value < 1 || value > max) throw new RangeError(`${name} must be an integer in 1..${max}, got ${value}`);
  return value;
}

/**
 * Walks accounts (by id), entries (by account, sequence) and checkpoints (by account, day) side by
 * side, like a merge join.
 */
async function verifyChains(tx: DatabaseTransactionConnection, batchSizeMax: number, log: BreakLog, closed: ClosedDays, totals: DayTotals) {
  const accounts = pagedRows<AccountRow>((after) => accountPage(tx, after?.id ?? 0n, batchSizeMax), batchSizeMax);
  const entries = peekable(pagedRows<EntryRow>((after) => entryPage(tx, after, batchSizeMax), batchSizeMax));
  const checkpoints = peekable(pagedRows<CheckpointRow>((after) => checkpointPage(tx, after, batchSizeMax), batchSizeMax));
  let accountsChecked = 0;
  let entriesChecked = 0;
  let checkpointsChecked = 0;
  for await (const account of accounts) {
    for (let entry = await entries.peek(); entry && entry.accountId < account.id; entry = await entries.peek()) {
      orphanEntry(entry, log);
      entriesChecked += 1;
      await entries.take();
    }
    const own: CheckpointRow[] = [];
    for (let cp = await checkpoints.peek(); cp && cp.accountId <= account.id; cp = await checkpoints.peek()) {
      if (cp.accountId === account.id) own.push(cp);
      await checkpoints.take();
    }
    const chain = new AccountChain(account, log, new CheckpointCheck(account, own, closed, totals, log.addCheckpoint));
    for (let entry = await entries.peek(); entry && entry.accountId === account.id; entry = await entries.peek()) {
      chain.check(entry);
      entriesChecked += 1;
      await entries.take();
    }
    checkpointsChecked += chain.finish();
    accountsChecked += 1;
  }
  for (let entry = await entries.peek(); entry; entry = await entries.peek()) {
    orphanEntry(entry, log);
    entriesChecked += 1;
    await entries.take();
  }
  return { accountsChecked, entriesChecked, checkpointsChecked };
}

class AccountChain {
  private last: EntryRow | null = null;
  constructor(
    private readonly account: AccountRow,
    private readonly log: BreakLog,
    private readonly checkpoints: CheckpointCheck,
  ) {}

  check(entry: EntryRow): void {
    const last = this.last;
    const report = (kind: LedgerBreakKind, expected: unknown, found: unknown) =>
      this.log.add({
        kind,
        accountCode: this.account.code,
        sequence: entry.sequence,
        entryId: entry.id,
        journalId: entry.journalId,
        expected: show(expected),
        found: show(found),
      });
    const expectedSequence = last ? last.sequence + 1n : 1n;
    if (entry.sequence !== expectedSequence) report('sequence', expectedSequence, entry.sequence);
    const expectedPrevious = last ? last.currentBalanceMinor : 0n;
    if (entry.previousBalanceMinor !== expectedPrevious) report('previous_balance', expectedPrevious, entry.previousBalanceMinor);
    const expectedCurrent = entry.previousBalanceMinor + entry.amountMinor;
    if (entry.currentBalanceMinor !== expectedCurrent) report('running_balance', expectedCurrent, entry.currentBalanceMinor);
    if (entry.amountMinor === 0n) report('amount_zero', 'a non-zero amount', entry.amountMinor);
    const expectedPreviousHash = last ? last.hash : null;
    if (entry.previousHash !== expectedPreviousHash) report('previous_hash', expectedPreviousHash, entry.previousHash);
    if (entry.currency !== this.account.currency) report('currency', this.account.currency, entry.currency);
    if (last && entry.createdAtUs < last.createdAtUs) report('created_at_order', `at or after ${last.createdAtUs} µs`, entry.createdAtUs);
    this.checkpoints.add(entry);
    if (entry.transactionId === null || entry.journalKind === null) {
      report('journal_missing', `journal transaction ${entry.journalId}`, null);
    } else {
      const expectedHash = ledgerEntryHash({ ...entry, transactionId: entry.transactionId, journalKind: entry.journalKind });
      if (entry.hash !== expectedHash) report('hash', expectedHash, entry.hash);
    }
    // continue from what is there: one break is reported once, not again for every later entry
    this.last = entry;
  }

  /** returns how many checkpoints of the account were compared with entries */
  finish(): number {
    const { account, last } = this;
    const report = (kind: LedgerBreakKind, expected: unknown, found: unknown) =>
      this.log.add({
        kind,
        accountCode: account.code,
        sequence: last?.sequence ?? null,
        entryId: last?.id ?? null,
        journalId: last?.journalId ?? null,
        expected: show(expected),
        found: show(found),
      });
    const balance = last?.currentBalanceMinor ?? 0n;
    if (account.balanceMinor !== balance) report('account_balance', balance, account.balanceMinor);
    const count = last?.sequence ?? 0n;
    if (account.entryCount !== count) report('account_entry_count', count, account.entryCount);
    const hash = last?.hash ?? null;
    if (account.lastEntryHash !== hash) report('account_last_hash', hash, account.lastEntryHash);
    return this.checkpoints.finish();
  }
}

function orphanEntry(entry: EntryRow, log: BreakLog): void {
  log.add({
    kind: 'account_missing',
    accountCode: null,
    sequence: entry.sequence,
    entryId: entry.id,
    journalId: entry.journalId,
    expected: `ledger account ${entry.accountId}`,
    found: 'none',
  });
}

async function verifyJournals(tx: DatabaseTransactionConnection, batchSizeMax: number, log: BreakLog): Promise<number> {
  let journalsChecked = 0;
  let afterId = 0n;
  for (;;) {
    const ids = await tx.anyFirst(sql.type(JournalRow)`
      select id from journal_transactions where id > ${afterId} order by id limit ${batchSizeMax}`);
    if (ids.length === 0) return journalsChecked;
    const rows = await tx.any(sql.type(JournalEntryRow)`
      select journal_id as "journalId", currency, amount_minor as "amountMinor"
        from entries where journal_id = any(${sql.array(ids, 'int8')})`);
    const byJournal = new Map<bigint, { count: number; sums: Map<string, bigint> }>(ids.map((id) => [id, { count: 0, sums: new Map() }]));
    for (const row of rows) {
      const journal = byJournal.get(row.journalId);
      if (!journal) continue;
      journal.count += 1;
      journal.sums.set(row.currency, (journal.sums.get(row.currency) ?? 0n) + row.amountMinor);
    }
    for (const [journalId, journal] of byJournal) {
      const report = (kind: LedgerBreakKind, expected: string, found: string) =>
        log.add({ kind, accountCode: null, sequence: null, entryId: null, journalId, expected, found });
      if (journal.count < 2) report('journal_entries_too_few', 'at least 2 entries', `${journal.count}`);
      const off = [...journal.sums].filter(([, sum]) => sum !== 0n).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      if (off.length > 0)
        report('journal_unbalanced', 'entries summing to 0 per currency', off.map(([c, sum]) => `${c} ${sum}`).join(', '));
    }
    journalsChecked += ids.length;
    if (ids.length < batchSizeMax) return journalsChecked;
    afterId = ids[ids.length - 1] as bigint;
  }
}

async function accountPage(tx: DatabaseTransactionConnection, afterId: bigint, limit: number) {
  return tx.any(sql.type(AccountRow)`
    select id, code, kind, currency, balance_minor as "balanceMinor", entry_count as "entryCount",
           encode(last_entry_hash, 'hex') as "lastEntryHash"
      from ledger_accounts where id > ${afterId} order by id limit ${limit}`);
}

// created_at as integer microseconds: a JavaScript Date keeps only milliseconds. The id breaks
// ties, so even duplicated sequences (a dropped unique constraint) are each read once.
async function entryPage(tx: DatabaseTransactionConnection, after: EntryRow | null, limit: number) {
  const [accountId, sequence, id] = after ? [after.accountId, after.sequence, after.id] : [0n, 0n, 0n];
  return tx.any(sql.type(EntryRow)`
    select e.id, e.ledger_account_id as "accountId", e.account_sequence as "sequence", e.journal_id as "journalId",
           j.transaction_id::text as "transactionId", j.kind as "journalKind", e.amount_minor as "amountMinor", e.currency,
           e.previous_balance_minor as "previousBalanceMinor", e.current_balance_minor as "currentBalanceMinor",
           encode(e.previous_hash, 'hex') as "previousHash", encode(e.hash, 'hex') as hash,
           (extract(epoch from e.created_at) * 1000000)::bigint as "createdAtUs"
      from entries e left join journal_transactions j on j.id = e.journal_id
     where (e.ledger_account_id, e.account_sequence, e.id) > (${accountId}, ${sequence}, ${id})
     order by e.ledger_account_id, e.account_sequence, e.id
     limit ${limit}`);
}

async function* pagedRows<T>(fetch: (after: T | null) => Promise<readonly T[]>, batchSizeMax: number): AsyncGenerator<T> {
  let after: T | null = null;
  for (;;) {
    const rows = await fetch(after);
    yield* rows;
    if (rows.length < batchSizeMax) return;
    after = rows[rows.length - 1] as T;
  }
}

function peekable<T>(iterator: AsyncIterator<T>) {
  let head: IteratorResult<T> | null = null;
  return {
    peek: async (): Promise<T | undefined> => {
      head ??= await iterator.next();
      return head.done ? undefined : head.value;
    },
    take: async (): Promise<void> => {
      head ??= await iterator.next();
      if (!head.done) head = null;
    },
  };
}

function show(value: unknown): string {
  return value === null || value === undefined ? 'null' : String(value);
}
