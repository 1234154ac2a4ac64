// Recovery: every withdrawal converges without a human, unless its outcome is truly unknown.
// - init for longer than INIT_STALE_MS: resume the flow where it stopped (post the hold again,
//   enqueue the submission again), idempotently: the provider's idempotency key and the
//   conditional transitions make a second payout impossible.
// - processing for longer than PROCESSING_STALE_MS: ask the provider; a definitive answer is
//   applied exactly as a callback would be (through the inbox); after PROCESSING_QUERY_ATTEMPTS_MAX
//   answers that say nothing, the order goes to manual with the evidence.
import { sql } from 'slonik';
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

/**
 * Resumes stale init orders; returns how many were resumed. `now` is the time the run decides
 * staleness at (default: the real clock); tests pass a later one instead of waiting.
 */
export async function resumeStaleInit(deps: { databases: Databases; config: Config; logger: Logger; now?: Date }): Promise<number> {
  const { balance, ledger } = deps.databases;
  const { initStaleMs, batchSizeMax } = deps.config.recovery;
  const now = (deps.now ?? new Date()).toISOString();
  const stale = await balance.any(sql.type(StaleInitRow)`
    select o.transaction_id as "transactionId", o.account_id as "accountId", o.amount_minor as "amountMinor", o.currency
      from withdraw_orders o
     where o.status = 'init' and o.updated_at < ${now}::timestamptz - make_interval(secs => ${initStaleMs / 1000})
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

const StaleProcessingRow = z.object({ transactionId: z.string(), status: z.enum(['processing', 'manual']) });

export type ProcessingRecovery = Record<'queried' | StatusQueryOutcome, number>;

/**
 * Asks the provider about stale processing orders and acts on the answers. `now` is the time the
 * run decides staleness and the query interval at, and records its answers at (default: the real
 * clock); tests pass a later one instead of waiting.
 */
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
  // manual orders are asked too: when the provider knows the outcome, no human needs to decide
  const stale = await balance.any(sql.type(StaleProcessingRow)`
    select o.transaction_id as "transactionId", o.status
      from withdraw_orders o
     where o.status in ('processing', 'manual')
       and o.updated_at < ${now.toISOString()}::timestamptz - make_interval(secs => ${r.processingStaleMs / 1000})
       and not exists (select 1 from gateway_status_queries q
                        where q.transaction_id = o.transaction_id
                          and q.created_at > ${now.toISOString()}::timestamptz - make_interval(secs => ${r.processingQueryIntervalMs / 1000}))
     order by o.updated_at limit ${r.batchSizeMax}`);
  const summary: ProcessingRecovery = { queried: 0, answered: 0, pending: 0, manual: 0, unknown: 0 };
  let next = 0;
  const work = async () => {
    while (next < stale.length) {
      const order = stale[next++]!;
      const lookup = await deps.psp.getPayout(order.transactionId);
      summary.queried += 1;
      // what the answer means (apply it, keep waiting, or hand the order to a human) is decided in
      // SQL, in the same transaction that records it: sql/balance/functions/gateway_record_status_query.sql
      const recorded = await recordStatusQuery(balance, {
        transactionId: order.transactionId,
        lookup,
        unknownMax: r.processingQueryAttemptsMax,
        pendingMax: r.processingPendingQueriesMax,
        now,
      });
      summary[recorded.outcome] += 1;
    }
  };
  await Promise.all(Array.from({ length: Math.min(r.concurrency, stale.length) }, work));
  if (summary.answered > 0) deps.onApplied?.();
  if (summary.queried > 0) deps.logger.info(summary, 'queried the provider about stale processing withdrawals');
  return summary;
}
