// Recovery: every withdrawal converges without a human, unless its outcome is truly unknown.
// - init for longer than INIT_STALE_MS: resume the flow where it stopped (post the hold again,
//   enqueue the submission again), idempotently: the provider's idempotency key and the
//   conditional transitions make a second payout impossible.
// - processing or manual, on a schedule of its own (withdraw_orders.next_query_at): asked first
//   PROCESSING_STALE_MS after the order entered its status, then after twice as long each time, at
//   most every PROCESSING_QUERY_INTERVAL_MS (MANUAL_QUERY_INTERVAL_MS for manual orders). A
//   definitive answer is applied exactly as a callback would be (through the inbox); after
//   PROCESSING_QUERY_ATTEMPTS_MAX answers that say nothing, a processing order goes to manual.
//
// Fair and bounded: each run takes the due processing orders (at most RECOVERY_BATCH_SIZE_MAX) and
// the due manual orders (at most RECOVERY_MANUAL_BATCH_SIZE_MAX) in separate queries, each the
// earliest due first through withdraw_orders_open_idx, so manual orders can never crowd out
// processing ones and no order is asked before its time. One run at a time, whoever schedules it
// (runRecovery holds an advisory lock; the cron and the timer share one job key and queue).
// Every function takes the time it runs at (`now`, default the real clock): tests pass a later one.
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import type { Config } from '../app/config.ts';
import type { Databases } from '../app/db/pools.ts';
import { recordStatusQuery, type StatusQueryOutcome } from '../app/gateway/gatewayQueries.ts';
import type { PspAdapter } from '../app/gateway/pspAdapter.ts';
import { postLedgerEvents, type RelayedEvent } from '../app/ledger/ledgerPosting.ts';
import type { Logger } from '../app/logger.ts';
import { CURRENCIES } from '../app/money/money.ts';
import { enqueueGatewaySubmits } from '../app/outbox/relays.ts';

const StaleInitRow = z.object({
  transactionId: z.string(),
  accountId: z.string(),
  amountMinor: z.bigint(),
  currency: z.enum(CURRENCIES),
});

/** Resumes stale init orders (at most RECOVERY_BATCH_SIZE_MAX, oldest first); returns how many. */
export async function resumeStaleInit(deps: { databases: Databases; config: Config; logger: Logger; now?: Date }): Promise<number> {
  const { balance, ledger } = deps.databases;
  const { initStaleMs, batchSizeMax } = deps.config.recovery;
  const now = (deps.now ?? new Date()).toISOString();
  const stale = await balance.any(sql.type(StaleInitRow)`
    select o.transaction_id as "transactionId", o.account_id as "accountId", o.amount_minor as "amountMinor", o.currency
      from withdraw_orders o
     where o.status = 'init' and o.next_query_at is null
       and o.updated_at < ${now}::timestamptz - make_interval(secs => ${initStaleMs / 1000})
       -- a submission that is queued or backing off is progress, not a stall
       and not exists (select 1 from graphile_worker.jobs j
                        where j.key = 'gateway-submit:' || o.transaction_id and j.attempts < j.max_attempts)
     order by o.updated_at limit ${batchSizeMax}`);
  if (stale.length === 0) return 0;
  // the hold is a fact of the Balance DB already; posting it again is a no-op when it exists
  const events: RelayedEvent[] = stale.map((order, index) => ({
    outboxId: index + 1,
    topic: 'withdraw.created',
    transactionId: order.transactionId,
    payload: {
      transactionId: order.transactionId,
      accountId: order.accountId,
      amountMinor: order.amountMinor.toString(),
      currency: order.currency,
    },
  }));
  const posted = await postLedgerEvents(ledger, events, 'recovery');
  const journalByTx = new Map(posted.map((row) => [row.transactionId, row.journalId === null ? null : Number(row.journalId)]));
  await enqueueGatewaySubmits(
    balance,
    stale.map((order) => ({ transactionId: order.transactionId, heldJournalId: journalByTx.get(order.transactionId) ?? null })),
    'recovery',
  );
  deps.logger.warn({ count: stale.length }, 'resumed stale init withdrawals');
  return stale.length;
}

export const QUERIED_STATUSES = ['processing', 'manual'] as const;
export type QueriedStatus = (typeof QUERIED_STATUSES)[number];

const DueRow = z.object({ transactionId: z.string(), dueAt: z.number() });

/**
 * The orders of one status whose query is due at `now`, earliest due first, at most `limit`: those
 * never asked in this status (due `firstMs` after they entered it) and those asked before (due at
 * next_query_at). Each half is one range scan of withdraw_orders_open_idx.
 */
export async function dueOrders(
  db: CommonQueryMethods,
  input: { status: QueriedStatus; now: Date; firstMs: number; limit: number },
): Promise<ReadonlyArray<z.infer<typeof DueRow>>> {
  const now = input.now.toISOString();
  const first = sql.fragment`make_interval(secs => ${input.firstMs / 1000})`;
  return db.any(sql.type(DueRow)`
    select d."transactionId", d."dueAt" from (
      (select o.transaction_id as "transactionId", o.updated_at + ${first} as "dueAt"
         from withdraw_orders o
        where o.status = ${input.status} and o.next_query_at is null and o.updated_at <= ${now}::timestamptz - ${first}
        order by o.updated_at limit ${input.limit})
      union all
      (select o.transaction_id, o.next_query_at
         from withdraw_orders o
        where o.status = ${input.status} and o.next_query_at <= ${now}::timestamptz
        order by o.next_query_at limit ${input.limit})
    ) d
    order by d."dueAt" limit ${input.limit}`);
}

/** How many orders of a status are due at `now` and not asked yet (the drill: none after a run). */
export async function overdueCount(db: CommonQueryMethods, input: { status: QueriedStatus; now: Date; firstMs: number }): Promise<number> {
  const now = input.now.toISOString();
  return db.oneFirst(sql.type(z.object({ n: z.number() }))`
    select count(*)::int as n from withdraw_orders o
     where o.status = ${input.status}
       and ((o.next_query_at is null and o.updated_at <= ${now}::timestamptz - make_interval(secs => ${input.firstMs / 1000}))
            or o.next_query_at <= ${now}::timestamptz)`);
}

export type ProcessingRecovery = Record<'queried' | StatusQueryOutcome, number>;

/** Asks the provider about the due processing orders, then the due manual ones, and acts on the answers. */
export async function queryStaleProcessing(deps: {
  databases: Databases;
  config: Config;
  psp: PspAdapter;
  logger: Logger;
  onApplied?: () => void;
  now?: Date;
}): Promise<ProcessingRecovery> {
  const { balance } = deps.databases;
  const r = deps.config.recovery;
  const now = deps.now ?? new Date();
  const plan: Array<{ status: QueriedStatus; limit: number; nextMaxMs: number }> = [
    { status: 'processing', limit: r.batchSizeMax, nextMaxMs: r.processingQueryIntervalMs },
    { status: 'manual', limit: r.manualBatchSizeMax, nextMaxMs: r.manualQueryIntervalMs },
  ];
  const summary: ProcessingRecovery = { queried: 0, answered: 0, pending: 0, manual: 0, unknown: 0 };
  for (const { status, limit, nextMaxMs } of plan) {
    const due = await dueOrders(balance, { status, now, firstMs: r.processingStaleMs, limit });
    let next = 0;
    const work = async () => {
      while (next < due.length) {
        const order = due[next++]!;
        const lookup = await deps.psp.getPayout(order.transactionId);
        summary.queried += 1;
        // what the answer means (apply it, keep waiting, or hand the order to a human) and when to
        // ask next is decided in SQL, in the same transaction that records it
        const recorded = await recordStatusQuery(balance, {
          transactionId: order.transactionId,
          lookup,
          unknownMax: r.processingQueryAttemptsMax,
          pendingMax: r.processingPendingQueriesMax,
          now,
          nextBaseMs: r.processingStaleMs,
          nextMaxMs,
        });
        summary[recorded.outcome] += 1;
      }
    };
    await Promise.all(Array.from({ length: Math.min(r.concurrency, due.length) }, work));
  }
  if (summary.answered > 0) deps.onApplied?.();
  if (summary.queried > 0) deps.logger.info(summary, 'queried the provider about processing and manual withdrawals');
  return summary;
}

/** Session advisory lock key of a recovery run (one at a time across every worker). */
const RECOVERY_LOCK = 'withdraw-system:recovery';

export type RecoveryRun =
  | Readonly<{ kind: 'ran'; resumed: number; queried: ProcessingRecovery }>
  /** another run holds the lock: this one did nothing */
  | Readonly<{ kind: 'busy' }>;

/** One recovery run: stale init orders, then the due processing and manual orders; never two at once. */
export async function runRecovery(deps: {
  databases: Databases;
  config: Config;
  psp: PspAdapter;
  logger: Logger;
  onApplied?: () => void;
  now?: Date;
}): Promise<RecoveryRun> {
  return deps.databases.balance.connect(async (session) => {
    const locked = await session.oneFirst(sql.type(z.object({ locked: z.boolean() }))`
      select pg_try_advisory_lock(hashtextextended(${RECOVERY_LOCK}, 0)) as locked`);
    if (!locked) return { kind: 'busy' } as const;
    try {
      const resumed = await resumeStaleInit(deps);
      const queried = await queryStaleProcessing(deps);
      return { kind: 'ran', resumed, queried } as const;
    } finally {
      await session.query(sql.unsafe`select pg_advisory_unlock(hashtextextended(${RECOVERY_LOCK}, 0))`);
    }
  });
}
