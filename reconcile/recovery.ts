// Recovery: every withdrawal converges without a human, unless its outcome is truly unknown.
// - init for longer than INIT_STALE_MS: resume the flow where it stopped (post the hold again,
//   enqueue the submission again), idempotently: the provider's idempotency key and the
//   conditional transitions make a second payout impossible.
// - processing for longer than PROCESSING_STALE_MS: ask the provider; a definitive answer is
//   applied exactly as a callback would be (through the inbox); after PROCESSING_QUERY_ATTEMPTS_MAX
//   answers that say nothing, the order goes to manual with the evidence.
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import type { Config } from '../app/config.ts';
import type { Databases } from '../app/db/pools.ts';
import { insertInbox } from '../app/gateway/gatewayQueries.ts';
import type { PayoutLookup, PspAdapter } from '../app/gateway/pspAdapter.ts';
import { postLedgerEvents, type RelayedEvent } from '../app/ledger/ledgerPosting.ts';
import type { Logger } from '../app/logger.ts';
import { enqueueGatewaySubmits } from '../app/outbox/relays.ts';

const StaleInitRow = z.object({
  transactionId: z.string(),
  accountId: z.string(),
  amountMinor: z.bigint(),
  currency: z.string(),
});

/** Resumes stale init orders; returns how many were resumed. */
export async function resumeStaleInit(deps: { databases: Databases; config: Config; logger: Logger }): Promise<number> {
  const { balance, ledger } = deps.databases;
  const { initStaleMs, batchSizeMax } = deps.config.recovery;
  const stale = await balance.any(sql.type(StaleInitRow)`
    select o.transaction_id as "transactionId", o.account_id as "accountId", o.amount_minor as "amountMinor", o.currency
      from withdraw_orders o
     where o.status = 'init' and o.updated_at < now() - make_interval(secs => ${initStaleMs / 1000})
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

const StaleProcessingRow = z.object({
  transactionId: z.string(),
  status: z.enum(['processing', 'manual']),
  unknownQueries: z.number(),
  pendingQueries: z.number(),
});

export type ProcessingRecovery = { queried: number; applied: number; pending: number; manual: number; unknown: number };

/** Asks the provider about stale processing orders and acts on the answers. */
export async function queryStaleProcessing(deps: {
  databases: Databases;
  config: Config;
  psp: PspAdapter;
  logger: Logger;
  onApplied?: () => void;
}): Promise<ProcessingRecovery> {
  const { balance } = deps.databases;
  const r = deps.config.recovery;
  // manual orders are asked too: when the provider knows the outcome, no human needs to decide
  const stale = await balance.any(sql.type(StaleProcessingRow)`
    select o.transaction_id as "transactionId", o.status,
           (select count(*) from gateway_status_queries q
             where q.transaction_id = o.transaction_id and q.result in ('not_found', 'unknown'))::int as "unknownQueries",
           (select count(*) from gateway_status_queries q
             where q.transaction_id = o.transaction_id and q.result = 'pending')::int as "pendingQueries"
      from withdraw_orders o
     where o.status in ('processing', 'manual') and o.updated_at < now() - make_interval(secs => ${r.processingStaleMs / 1000})
       and not exists (select 1 from gateway_status_queries q
                        where q.transaction_id = o.transaction_id
                          and q.created_at > now() - make_interval(secs => ${r.processingQueryIntervalMs / 1000}))
     order by o.updated_at limit ${r.batchSizeMax}`);
  const summary: ProcessingRecovery = { queried: 0, applied: 0, pending: 0, manual: 0, unknown: 0 };
  let next = 0;
  const work = async () => {
    while (next < stale.length) {
      const order = stale[next++]!;
      const lookup = await deps.psp.getPayout(order.transactionId);
      summary.queried += 1;
      const outcome = await applyLookup(balance, order, lookup, r);
      summary[outcome] += 1;
    }
  };
  await Promise.all(Array.from({ length: Math.min(r.concurrency, stale.length) }, work));
  if (summary.applied > 0) deps.onApplied?.();
  if (summary.queried > 0) deps.logger.info(summary, 'queried the provider about stale processing withdrawals');
  return summary;
}

async function applyLookup(
  balance: DatabasePool,
  order: z.infer<typeof StaleProcessingRow>,
  lookup: PayoutLookup,
  settings: Config['recovery'],
): Promise<keyof ProcessingRecovery> {
  const { transactionId } = order;
  const result = lookup.kind === 'found' ? lookup.status : lookup.kind;
  const detail = lookup.kind === 'found' ? lookup.detail : lookup.kind === 'unknown' ? { reason: lookup.reason } : {};
  await balance.query(sql.unsafe`
    insert into gateway_status_queries (transaction_id, result, detail)
    values (${transactionId}, ${result}, ${sql.jsonb(detail as Parameters<typeof sql.jsonb>[0])})`);
  if (lookup.kind === 'found' && (lookup.status === 'paid' || lookup.status === 'failed')) {
    // applied exactly as a callback: one path, one set of rules (sql/balance/0003 gateway_apply_callback)
    await insertInbox(balance, {
      eventId: `status-query:${transactionId}:${lookup.status}`,
      reference: transactionId,
      status: lookup.status,
      failureCode: lookup.failureCode,
      occurredAt: new Date().toISOString(),
      payload: { source: 'status_query', detail },
      signedAtSec: Math.floor(Date.now() / 1000),
    });
    return 'applied';
  }
  // already manual: a human decides; the query is on record as evidence
  if (order.status === 'manual') return lookup.kind === 'found' ? 'pending' : 'unknown';
  const stillPending = lookup.kind === 'found';
  if (stillPending && order.pendingQueries + 1 < settings.processingPendingQueriesMax) return 'pending';
  if (!stillPending && order.unknownQueries + 1 < settings.processingQueryAttemptsMax) return 'unknown';
  const why = stillPending
    ? `the provider still reports the payout pending after ${order.pendingQueries + 1} status queries`
    : `the provider could not confirm the payout after ${order.unknownQueries + 1} status queries`;
  await balance.query(sql.unsafe`
    select * from withdraw_transition(${transactionId}, array['processing'], 'manual', 'reconciler', 'recovery__stale_processing',
      ${why},
      (select jsonb_build_object('statusQueries', jsonb_agg(jsonb_build_object('result', q.result, 'detail', q.detail, 'at', q.created_at) order by q.id))
         from gateway_status_queries q where q.transaction_id = ${transactionId}))`);
  return 'manual';
}
