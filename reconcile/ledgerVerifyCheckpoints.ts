// The checkpoint half of `npm run ledger:verify` (reconcile/ledgerVerify.ts walks the chains and
// feeds each account's entries here): every closed UTC day's checkpoints and totals recomputed
// from the entries themselves, in TypeScript, never trusting the function that wrote them
// (sql/ledger/functions/ledger_close_day.sql).
import { sql, type DatabaseTransactionConnection } from 'slonik';
import { z } from 'zod';

export type CheckpointBreakKind =
  | 'checkpoint_missing'
  | 'checkpoint_mismatch'
  | 'checkpoint_orphan'
  | 'checkpoint_totals'
  | 'checkpoint_day';

export type CheckpointBreak = Readonly<{
  kind: CheckpointBreakKind;
  accountCode: string | null;
  sequence: bigint | null;
  day: string;
  expected: string;
  found: string;
}>;

const US_PER_DAY = 86_400_000_000n;
const MS_PER_DAY = 86_400_000;

/** The UTC day (days since 1970-01-01) of an instant in microseconds since the epoch. */
export function dayOfUs(us: bigint): number {
  const q = us / US_PER_DAY;
  return Number(us < 0n && q * US_PER_DAY !== us ? q - 1n : q);
}

export const dayText = (day: number) => new Date(day * MS_PER_DAY).toISOString().slice(0, 10);

const ClosedDayRow = z.object({ day: z.number().int(), accounts: z.number().int(), entryCount: z.bigint() });
export type ClosedDays = Readonly<{ last: number | null; rows: ReadonlyMap<number, z.infer<typeof ClosedDayRow>> }>;

export async function closedDays(tx: DatabaseTransactionConnection): Promise<ClosedDays> {
  const rows = await tx.any(sql.type(ClosedDayRow)`
    select (day - date '1970-01-01') as day, accounts, entry_count as "entryCount" from ledger_checkpoint_days order by day`);
  return { last: rows.at(-1)?.day ?? null, rows: new Map(rows.map((r) => [r.day, r])) };
}

export const CheckpointRow = z.object({
  accountId: z.bigint(),
  day: z.number().int(),
  openingMinor: z.bigint(),
  closingMinor: z.bigint(),
  debitsMinor: z.bigint(),
  creditsMinor: z.bigint(),
  entryCount: z.bigint(),
  lastSequence: z.bigint(),
});
export type CheckpointRow = z.infer<typeof CheckpointRow>;

export async function checkpointPage(tx: DatabaseTransactionConnection, after: CheckpointRow | null, limit: number) {
  const [accountId, day] = after ? [after.accountId, after.day] : [0n, -1_000_000];
  return tx.any(sql.type(CheckpointRow)`
    select ledger_account_id as "accountId", (day - date '1970-01-01') as day, opening_balance_minor as "openingMinor",
           closing_balance_minor as "closingMinor", debits_minor as "debitsMinor", credits_minor as "creditsMinor",
           entry_count as "entryCount", last_account_sequence as "lastSequence"
      from ledger_checkpoints
     where (ledger_account_id, day) > (${accountId}, date '1970-01-01' + ${day}::int)
     order by ledger_account_id, day
     limit ${limit}`);
}

type DayFigures = {
  openingMinor: bigint;
  closingMinor: bigint;
  debitsMinor: bigint;
  creditsMinor: bigint;
  entryCount: bigint;
  lastSequence: bigint;
};

/** Per closed day, currency and account kind: what the entries add up to. */
export class DayTotals {
  readonly byKey = new Map<string, { debitsMinor: bigint; creditsMinor: bigint; entryCount: bigint; accounts: number }>();
  add(day: number, currency: string, kind: string, figures: DayFigures): void {
    const key = `${day}|${currency}|${kind}`;
    const total = this.byKey.get(key) ?? { debitsMinor: 0n, creditsMinor: 0n, entryCount: 0n, accounts: 0 };
    total.debitsMinor += figures.debitsMinor;
    total.creditsMinor += figures.creditsMinor;
    total.entryCount += figures.entryCount;
    total.accounts += 1;
    this.byKey.set(key, total);
  }
}

type Account = Readonly<{ code: string; kind: string; currency: string }>;
type Entry = Readonly<{
  sequence: bigint;
  amountMinor: bigint;
  previousBalanceMinor: bigint;
  currentBalanceMinor: bigint;
  createdAtUs: bigint;
}>;

const FIELDS = ['openingMinor', 'closingMinor', 'debitsMinor', 'creditsMinor', 'entryCount', 'lastSequence'] as const;
const COLUMN: Record<(typeof FIELDS)[number], string> = {
  openingMinor: 'opening_balance_minor',
  closingMinor: 'closing_balance_minor',
  debitsMinor: 'debits_minor',
  creditsMinor: 'credits_minor',
  entryCount: 'entry_count',
  lastSequence: 'last_account_sequence',
};

/** One account's entries grouped by UTC day, compared with its checkpoints once the account ends. */
export class CheckpointCheck {
  private readonly days = new Map<number, DayFigures>();
  constructor(
    private readonly account: Account,
    private readonly checkpoints: readonly CheckpointRow[],
    private readonly closed: ClosedDays,
    private readonly totals: DayTotals,
    private readonly report: (b: CheckpointBreak) => void,
  ) {}

  add(entry: Entry): void {
    const day = dayOfUs(entry.createdAtUs);
    const figures = this.days.get(day);
    const debit = entry.amountMinor > 0n ? entry.amountMinor : 0n;
    const credit = entry.amountMinor < 0n ? -entry.amountMinor : 0n;
    if (!figures) {
      this.days.set(day, {
        openingMinor: entry.previousBalanceMinor,
        closingMinor: entry.currentBalanceMinor,
        debitsMinor: debit,
        creditsMinor: credit,
        entryCount: 1n,
        lastSequence: entry.sequence,
      });
      return;
    }
    figures.closingMinor = entry.currentBalanceMinor;
    figures.debitsMinor += debit;
    figures.creditsMinor += credit;
    figures.entryCount += 1n;
    figures.lastSequence = entry.sequence;
  }

  /** returns how many checkpoints were compared */
  finish(): number {
    const { account, closed } = this;
    const byDay = new Map(this.checkpoints.map((c) => [c.day, c]));
    let compared = 0;
    for (const [day, figures] of this.days) {
      if (closed.last === null || day > closed.last) continue;
      this.totals.add(day, account.currency, account.kind, figures);
      const checkpoint = byDay.get(day);
      byDay.delete(day);
      const at = { accountCode: account.code, sequence: figures.lastSequence, day: dayText(day) };
      if (!checkpoint) {
        this.report({ kind: 'checkpoint_missing', ...at, expected: `a checkpoint of ${figures.entryCount} entries`, found: 'none' });
        continue;
      }
      compared += 1;
      for (const field of FIELDS) {
        if (checkpoint[field] !== figures[field]) {
          this.report({
            kind: 'checkpoint_mismatch',
            ...at,
            expected: `${COLUMN[field]} ${figures[field]}`,
            found: `${COLUMN[field]} ${checkpoint[field]}`,
          });
        }
      }
    }
    for (const orphan of byDay.values()) {
      this.report({
        kind: 'checkpoint_orphan',
        accountCode: account.code,
        sequence: orphan.lastSequence,
        day: dayText(orphan.day),
        expected: 'no checkpoint (no entries that day)',
        found: `a checkpoint of ${orphan.entryCount} entries`,
      });
    }
    return compared;
  }
}

const TotalsRow = z.object({
  day: z.number().int(),
  currency: z.string(),
  kind: z.string(),
  openingMinor: z.bigint(),
  closingMinor: z.bigint(),
  debitsMinor: z.bigint(),
  creditsMinor: z.bigint(),
  entryCount: z.bigint(),
  accounts: z.number().int(),
});

/**
 * Every day before the last closed one has its row (no gaps from the first); each day row counts
 * what its entries count; each totals row holds its entries' sums and opens at the previous day's
 * closing; a currency and kind, once present, has a row every later closed day.
 */
export async function verifyClosedDays(
  tx: DatabaseTransactionConnection,
  closed: ClosedDays,
  totals: DayTotals,
  report: (b: CheckpointBreak) => void,
): Promise<void> {
  if (closed.last === null) return;
  const first = Math.min(...closed.rows.keys());
  const perDay = new Map<number, { accounts: number; entryCount: bigint }>();
  for (const [key, total] of totals.byKey) {
    const day = Number(key.split('|')[0]);
    const sum = perDay.get(day) ?? { accounts: 0, entryCount: 0n };
    sum.accounts += total.accounts;
    sum.entryCount += total.entryCount;
    perDay.set(day, sum);
  }
  for (const [day] of perDay) {
    if (day < first)
      report({
        kind: 'checkpoint_day',
        accountCode: null,
        sequence: null,
        day: dayText(day),
        expected: 'the day closed',
        found: 'entries dated before the first closed day',
      });
  }
  for (let day = first; day <= closed.last; day += 1) {
    const row = closed.rows.get(day);
    const sum = perDay.get(day) ?? { accounts: 0, entryCount: 0n };
    const at = { accountCode: null, sequence: null, day: dayText(day) };
    if (!row) {
      report({ kind: 'checkpoint_day', ...at, expected: 'a closed day row', found: 'none (a gap)' });
    } else if (row.accounts !== sum.accounts || row.entryCount !== sum.entryCount) {
      report({
        kind: 'checkpoint_day',
        ...at,
        expected: `${sum.accounts} accounts, ${sum.entryCount} entries`,
        found: `${row.accounts} accounts, ${row.entryCount} entries`,
      });
    }
  }
  const rows = await tx.any(sql.type(TotalsRow)`
    select (day - date '1970-01-01') as day, currency, account_kind as kind, opening_balance_minor as "openingMinor",
           closing_balance_minor as "closingMinor", debits_minor as "debitsMinor", credits_minor as "creditsMinor",
           entry_count as "entryCount", accounts
      from ledger_checkpoint_totals order by currency, account_kind, day`);
  const seen = new Set<string>();
  let previous: z.infer<typeof TotalsRow> | null = null;
  for (const row of rows) {
    const key = `${row.day}|${row.currency}|${row.kind}`;
    seen.add(key);
    const at = { accountCode: `${row.kind}:${row.currency}`, sequence: null, day: dayText(row.day) };
    const expected = totals.byKey.get(key) ?? { debitsMinor: 0n, creditsMinor: 0n, entryCount: 0n, accounts: 0 };
    const samePair = previous !== null && previous.currency === row.currency && previous.kind === row.kind;
    const opening = samePair ? previous!.closingMinor : 0n;
    const mismatches = [
      ['debits_minor', expected.debitsMinor, row.debitsMinor],
      ['credits_minor', expected.creditsMinor, row.creditsMinor],
      ['entry_count', expected.entryCount, row.entryCount],
      ['accounts', BigInt(expected.accounts), BigInt(row.accounts)],
      ['opening_balance_minor', opening, row.openingMinor],
    ] as const;
    for (const [column, want, got] of mismatches) {
      if (want !== got) report({ kind: 'checkpoint_totals', ...at, expected: `${column} ${want}`, found: `${column} ${got}` });
    }
    if (samePair && row.day !== previous!.day + 1) {
      report({
        kind: 'checkpoint_totals',
        ...at,
        expected: `a row for ${dayText(previous!.day + 1)}`,
        found: `next row ${dayText(row.day)}`,
      });
    }
    if (!samePair && previous !== null && previous.day !== closed.last) {
      report({
        kind: 'checkpoint_totals',
        accountCode: `${previous.kind}:${previous.currency}`,
        sequence: null,
        day: dayText(previous.day),
        expected: `rows through ${dayText(closed.last)}`,
        found: `the last row on ${dayText(previous.day)}`,
      });
    }
    previous = row;
  }
  if (previous !== null && previous.day !== closed.last) {
    report({
      kind: 'checkpoint_totals',
      accountCode: `${previous.kind}:${previous.currency}`,
      sequence: null,
      day: dayText(previous.day),
      expected: `rows through ${dayText(closed.last)}`,
      found: `the last row on ${dayText(previous.day)}`,
    });
  }
  for (const [key, total] of totals.byKey) {
    if (seen.has(key)) continue;
    const [day, currency, kind] = key.split('|');
    report({
      kind: 'checkpoint_totals',
      accountCode: `${kind}:${currency}`,
      sequence: null,
      day: dayText(Number(day)),
      expected: `a totals row of ${total.entryCount} entries`,
      found: 'none',
    });
  }
}
