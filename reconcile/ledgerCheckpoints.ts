// Ledger checkpoints (sql/ledger/0006_checkpoints.sql): the job that closes each UTC day of the
// ledger once it is over plus a settle margin, oldest first, at most `daysMax` per run, one
// transaction per day under its own statement timeout. Closing a day reads that day's entries once
// (index only) and writes a row per account active that day, so a run costs a day's postings, never
// all of history. Readers: the trial balance and account statements (sql/reports/), balances at an
// instant (ledger_account_balance_at), reconciliation; `npm run ledger:verify` recomputes them.
import { sql, type CommonQueryMethods, type DatabasePool } from 'slonik';
import { z } from 'zod';

export const CLOSE_DAY_OUTCOMES = ['closed', 'already_closed', 'not_due', 'out_of_order'] as const;
export type CloseDayOutcome = (typeof CLOSE_DAY_OUTCOMES)[number];

const CloseDayRow = z.object({
  outcome: z.enum(CLOSE_DAY_OUTCOMES),
  accounts: z.number().int().nullable(),
  entryCount: z.bigint().nullable(),
});
export type CloseDayResult = z.infer<typeof CloseDayRow>;

/** The typed wrapper of sql/ledger/functions/ledger_close_day.sql. `day` is YYYY-MM-DD (UTC). */
export async function closeLedgerDay(db: CommonQueryMethods, input: { day: string; now: Date; settleMs: number }): Promise<CloseDayResult> {
  return db.one(sql.type(CloseDayRow)`
    select outcome, accounts, entry_count as "entryCount"
      from ledger_close_day(${input.day}::date, ${input.now.toISOString()}::timestamptz, ${input.settleMs})`);
}

const NextDayRow = z.object({ day: z.string().nullable() });

/** The first day not closed yet: the day after the last closed one, or the day of the first entry. */
export async function nextDayToClose(db: CommonQueryMethods): Promise<string | null> {
  return db.oneFirst(sql.type(NextDayRow)`
    select to_char(coalesce((select max(day) + 1 from ledger_checkpoint_days),
                            (select (min(created_at) at time zone 'UTC')::date from entries)), 'YYYY-MM-DD') as day`);
}

const DAY_MS = 86_400_000;
const dayEndMs = (day: string) => Date.parse(`${day}T00:00:00Z`) + DAY_MS;
const nextDay = (day: string) => new Date(dayEndMs(day)).toISOString().slice(0, 10);

export type CheckpointRun = Readonly<{
  closed: ReadonlyArray<{ day: string; accounts: number; entryCount: bigint }>;
  /** the first day left open after this run (null: the ledger has no entries) */
  nextDay: string | null;
  /** why the run stopped: nothing due, the per-run bound, or a refusal of ledger_close_day */
  stoppedBy: 'not_due' | 'days_max' | 'out_of_order' | 'empty';
}>;

export async function runLedgerCheckpoints(deps: {
  ledger: DatabasePool;
  settleMs: number;
  daysMax: number;
  statementTimeoutMs: number;
  /** the time the run decides which days are over at (default: the real clock) */
  now?: Date;
}): Promise<CheckpointRun> {
  const now = deps.now ?? new Date();
  const closed: Array<{ day: string; accounts: number; entryCount: bigint }> = [];
  let day = await nextDayToClose(deps.ledger);
  if (day === null) return { closed, nextDay: null, stoppedBy: 'empty' };
  while (closed.length < deps.daysMax) {
    if (dayEndMs(day) + deps.settleMs > now.getTime()) return { closed, nextDay: day, stoppedBy: 'not_due' };
    const current = day;
    const result = await deps.ledger.transaction(async (tx) => {
      await tx.query(sql.unsafe`select set_config('statement_timeout', ${String(deps.statementTimeoutMs)}, true)`);
      return closeLedgerDay(tx, { day: current, now, settleMs: deps.settleMs });
    });
    if (result.outcome === 'not_due') return { closed, nextDay: day, stoppedBy: 'not_due' };
    if (result.outcome === 'out_of_order') return { closed, nextDay: day, stoppedBy: 'out_of_order' };
    if (result.outcome === 'closed') closed.push({ day, accounts: result.accounts ?? 0, entryCount: result.entryCount ?? 0n });
    day = nextDay(day);
  }
  return { closed, nextDay: day, stoppedBy: 'days_max' };
}
