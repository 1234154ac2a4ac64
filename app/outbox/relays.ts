// The two outbox relays. Balance: claim, enqueue and mark in ONE Balance DB transaction (the job
// queue lives there). Ledger: claim in a Ledger DB transaction, enqueue in the Balance DB, then
// mark and commit: at-least-once, consumers are idempotent.
import { AsyncLocalStorage } from 'node:async_hooks';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';

// slonik refuses a query on another pool from inside a transaction (a guard against using the
// pool instead of the transaction by mistake). The ledger relay means it: it enqueues in the
// Balance DB while its Ledger DB transaction holds the claimed rows. Running that one call in
// the async context captured here, outside any transaction, keeps the guard for everything else.
const outsideAnyTransaction = AsyncLocalStorage.snapshot();

export function balanceOutboxRelay(balance: DatabasePool, batchSizeMax: number): () => Promise<number> {
  return () =>
    balance.oneFirst(sql.type(z.object({ relayed: z.number() }))`
    select outbox_relay_balance(${batchSizeMax}) as relayed`);
}

const LedgerOutboxRow = z.object({
  id: z.bigint(),
  topic: z.string(),
  transactionId: z.string(),
  payload: z.object({ journalId: z.coerce.number().int().optional() }).passthrough(),
});

export function ledgerOutboxRelay(deps: {
  ledger: DatabasePool;
  balance: DatabasePool;
  batchSizeMax: number;
  submitBatchSizeMax: number;
}): () => Promise<number> {
  return () =>
    deps.ledger.transaction(async (tx) => {
      const rows = await tx.any(sql.type(LedgerOutboxRow)`
        select id, topic, transaction_id as "transactionId", payload
          from outbox where relayed_at is null order by id limit ${deps.batchSizeMax} for update skip locked`);
      if (rows.length === 0) return 0;
      const held = rows.filter((row) => row.topic === 'ledger.held');
      if (held.length > 0) {
        const submits = held.map((row) => ({ transactionId: row.transactionId, heldJournalId: row.payload.journalId ?? null }));
        await outsideAnyTransaction(() => enqueueGatewaySubmitBatches(deps.balance, submits, deps.submitBatchSizeMax));
      }
      await tx.query(sql.unsafe`
        update outbox set relayed_at = now() where id = any(${sql.array(
          rows.map((row) => row.id),
          'int8',
        )})`);
      return rows.length;
    });
}

/**
 * One gateway__submit job per withdrawal. The job key folds duplicates that are still queued
 * (and keeps a scheduled retry's time); it is not what makes submission idempotent.
 */
export async function enqueueGatewaySubmits(
  balance: Pick<DatabasePool, 'query'>,
  submits: ReadonlyArray<{ transactionId: string; heldJournalId: number | null }>,
  source: string,
): Promise<void> {
  if (submits.length === 0) return;
  await balance.query(sql.unsafe`
    select count(*) from graphile_worker.add_jobs(
      (select array_agg(row('gateway__submit',
                            json_build_object('transactionId', t.tx, 'heldJournalId', t.journal, 'source', ${source}::text),
                            null, null, null, 'gateway-submit:' || t.tx, null, null)::graphile_worker.job_spec)
         from unnest(${sql.array(
           submits.map((s) => s.transactionId),
           'uuid',
         )}::uuid[],
                     ${sql.array(
                       submits.map((s) => s.heldJournalId),
                       'int8',
                     )}::bigint[]) as t(tx, journal)),
      true)`);
}

/** Held withdrawals go to the provider in batches: one gateway__submit_batch job per chunk. */
export async function enqueueGatewaySubmitBatches(
  balance: Pick<DatabasePool, 'query'>,
  submits: ReadonlyArray<{ transactionId: string; heldJournalId: number | null }>,
  chunkSizeMax: number,
): Promise<void> {
  const chunks: Array<typeof submits> = [];
  for (let i = 0; i < submits.length; i += chunkSizeMax) chunks.push(submits.slice(i, i + chunkSizeMax));
  if (chunks.length === 0) return;
  await balance.query(sql.unsafe`
    select count(*) from graphile_worker.add_jobs(
      (select array_agg(row('gateway__submit_batch', c.payload, null, null, null, null, null, null)::graphile_worker.job_spec)
         from unnest(${sql.array(
           chunks.map((chunk) => JSON.stringify({ submits: chunk, source: 'ledger.held' })),
           'json',
         )}::json[]) as c(payload)))`);
}

// Relayed rows are kept for a while (audit, debugging), then pruned (jobs/pruning.ts).

export const OutboxLagRow = z.object({ unrelayed: z.number(), oldestAgeSeconds: z.number().nullable() });

export async function outboxLag(db: DatabasePool): Promise<z.infer<typeof OutboxLagRow>> {
  return db.one(sql.type(OutboxLagRow)`
    select count(*)::int as unrelayed,
           extract(epoch from now() - min(created_at))::float8 as "oldestAgeSeconds"
      from outbox where relayed_at is null`);
}
