// The daily-withdrawals rollup (sql/balance/0021_withdraw_daily_rollup.sql): the typed wrappers of
// withdraw_daily_fold and withdraw_daily_rebuild, and one run of the reports__daily_fold job.
import { sql, type DatabasePool, type DatabaseTransactionConnection } from 'slonik';
import { z } from 'zod';

/** Deltas one fold moves at most (a run every minute: far above millions of orders a day). */
export const DAILY_FOLD_ROWS_MAX = 200_000;
/** a rebuild that met a concurrent fold is tried again this many times */
const REBUILD_ATTEMPTS = 3;

const FoldRow = z.object({ outcome: z.enum(['folded', 'not_built']), folded: z.number().int(), left_over: z.boolean() });
export type DailyFold = z.infer<typeof FoldRow>;
const RebuildRow = z.object({ buckets: z.number().int(), orders: z.coerce.bigint() });
export type DailyRebuild = z.infer<typeof RebuildRow>;

export async function foldDailyWithdrawals(pool: DatabasePool | DatabaseTransactionConnection, rowsMax: number): Promise<DailyFold> {
  return pool.one(sql.type(FoldRow)`select outcome, folded, left_over from withdraw_daily_fold(${rowsMax}::int)`);
}

/** Builds the rollup from withdraw_orders in one REPEATABLE READ snapshot (again after a serialization failure). */
export async function rebuildDailyWithdrawals(pool: DatabasePool): Promise<DailyRebuild> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await pool.transaction(async (tx) => {
        await tx.query(sql.unsafe`set transaction isolation level repeatable read`);
        return tx.one(sql.type(RebuildRow)`select buckets, orders::text as orders from withdraw_daily_rebuild()`);
      });
    } catch (error) {
      const code = (error as { cause?: { code?: string }; code?: string }).cause?.code ?? (error as { code?: string }).code;
      if (code !== '40001' || attempt >= REBUILD_ATTEMPTS) throw error;
    }
  }
}

export type DailyFoldRun = Readonly<{ rebuilt: DailyRebuild | null; folded: number; leftOver: boolean }>;

/** One run of reports__daily_fold: builds the rollup the first time, then moves the deltas into it. */
export async function runDailyFold(deps: { pool: DatabasePool; rowsMax?: number }): Promise<DailyFoldRun> {
  const rowsMax = deps.rowsMax ?? DAILY_FOLD_ROWS_MAX;
  let fold = await foldDailyWithdrawals(deps.pool, rowsMax);
  let rebuilt: DailyRebuild | null = null;
  if (fold.outcome === 'not_built') {
    rebuilt = await rebuildDailyWithdrawals(deps.pool);
    fold = await foldDailyWithdrawals(deps.pool, rowsMax);
  }
  return { rebuilt, folded: fold.folded, leftOver: fold.left_over };
}
