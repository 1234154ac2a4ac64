// Housekeeping: rows kept for a while and then deleted, by the maintenance__prune job, each table
// through an index on its age, in short batches (one transaction each, under the maintenance
// statement timeout), at most PRUNE_ROWS_PER_RUN_MAX rows per table per run. The job runs every
// minute, so each table drains PRUNE_ROWS_PER_RUN_MAX rows a minute (docs/operations.md, "How fast
// the recurring jobs drain"), far above what the design load adds (a few rows per withdrawal).
//
// - idempotency keys: IDEMPOTENCY_KEY_RETENTION_HOURS after their first use AND after the time
//   inside the key (a UUIDv7), so that no key is pruned while app/withdraw/idempotencyKeys.ts
//   still accepts it;
// - both outboxes: relayed rows OUTBOX_RETENTION_HOURS after they were relayed;
// - gateway_inbox: applied callbacks GATEWAY_INBOX_RETENTION_HOURS after they were applied,
//   except those of orders still open (evidence for recovery and manual review);
// - webhook_events: outgoing events (with their deliveries) webhook_retention() (30 days, in SQL:
//   the fan-out looks back as far) and a day after they happened.
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import type { Config } from '../app/config.ts';
import type { Databases } from '../app/db/pools.ts';

const Deleted = z.object({ deleted: z.number() });

type PruneBatch = (db: DatabasePool, retentionHours: number, batchSizeMax: number, now?: Date) => Promise<number>;

const at = (now: Date | undefined) => (now ?? new Date()).toISOString();

export const pruneIdempotencyKeys: PruneBatch = (db, retentionHours, batchSizeMax, now) => {
  const hours = Math.max(24, retentionHours);
  return db.oneFirst(sql.type(Deleted)`
    with doomed as (
      select k.user_id, k.idempotency_key from idempotency_keys k
       where k.created_at < ${at(now)}::timestamptz - make_interval(hours => ${hours})
         and uuid_extract_timestamp(k.idempotency_key) < ${at(now)}::timestamptz - make_interval(hours => ${hours})
       order by k.created_at limit ${batchSizeMax}
    ), deleted as (
      delete from idempotency_keys k using doomed d
       where k.user_id = d.user_id and k.idempotency_key = d.idempotency_key returning 1
    )
    select count(*)::int as deleted from deleted`);
};

/** Relayed rows of either database's outbox (the same table shape in both). */
export const pruneRelayedOutbox: PruneBatch = (db, retentionHours, batchSizeMax, now) =>
  db.oneFirst(sql.type(Deleted)`
    with doomed as (
      select id from outbox
       where relayed_at is not null and relayed_at < ${at(now)}::timestamptz - make_interval(hours => ${retentionHours})
       order by relayed_at limit ${batchSizeMax}
    ), deleted as (delete from outbox o using doomed d where o.id = d.id returning 1)
    select count(*)::int as deleted from deleted`);

export const pruneGatewayInbox: PruneBatch = (db, retentionHours, batchSizeMax, now) =>
  db.oneFirst(sql.type(Deleted)`
    with doomed as (
      select i.id from gateway_inbox i
       where i.processed_at is not null and i.processed_at < ${at(now)}::timestamptz - make_interval(hours => ${retentionHours})
         and not exists (
           select 1 from withdraw_orders o
            where o.transaction_id = case when i.reference ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                                          then i.reference::uuid end
              and o.status = any(withdraw_open_statuses()))
       order by i.processed_at limit ${batchSizeMax}
    ), deleted as (delete from gateway_inbox g using doomed d where g.id = d.id returning 1)
    select count(*)::int as deleted from deleted`);

/** Outgoing events and their deliveries; the retention is webhook_retention() (retentionHours is not used). */
export const pruneWebhookEvents: PruneBatch = (db, _retentionHours, batchSizeMax, now) =>
  db.oneFirst(sql.type(z.object({ deleted: z.number() }))`select webhook_prune(${batchSizeMax}, ${at(now)}::timestamptz) as deleted`);

export const PRUNED_TABLES = ['idempotency_keys', 'balance_outbox', 'ledger_outbox', 'gateway_inbox', 'webhook_events'] as const;
export type PrunedTable = (typeof PRUNED_TABLES)[number];

/**
 * The load pruning is sized for: 5M withdrawals a day, and the rows each adds at most (a key; the
 * created, processing and final events plus a spare; ledger.held; a callback, its duplicate and a
 * status query's answer). The default bounds drain every table at least 5× faster (7× the
 * balance outbox, 29× the keys and the ledger outbox).
 */
export const DESIGN_WITHDRAWALS_PER_DAY = 5_000_000;
export const ROWS_PER_WITHDRAWAL_MAX: Readonly<Record<PrunedTable, number>> = {
  idempotency_keys: 1,
  balance_outbox: 4,
  ledger_outbox: 1,
  gateway_inbox: 3,
  // processing, a final state, perhaps manual or reversed (each with a delivery per endpoint)
  webhook_events: 4,
};
export type PruneRun = Record<PrunedTable, number>;

/** One pruning run: every table, batch after batch, until it is done or its per-run bound is reached. */
export async function runPruning(deps: { databases: Databases; config: Config; now?: Date }): Promise<PruneRun> {
  const { databases, config } = deps;
  const m = config.maintenance;
  const plan: Array<[PrunedTable, DatabasePool, PruneBatch, number]> = [
    ['idempotency_keys', databases.balance, pruneIdempotencyKeys, config.idempotency.retentionHours],
    ['balance_outbox', databases.balance, pruneRelayedOutbox, config.worker.outboxRetentionHours],
    ['ledger_outbox', databases.ledger, pruneRelayedOutbox, config.worker.outboxRetentionHours],
    ['gateway_inbox', databases.balance, pruneGatewayInbox, m.inboxRetentionHours],
    ['webhook_events', databases.balance, pruneWebhookEvents, 0],
  ];
  const run = { idempotency_keys: 0, balance_outbox: 0, ledger_outbox: 0, gateway_inbox: 0, webhook_events: 0 };
  for (const [table, db, prune, retentionHours] of plan) {
    while (run[table] < m.pruneRowsPerRunMax) {
      const batch = Math.min(m.pruneBatchSizeMax, m.pruneRowsPerRunMax - run[table]);
      const deleted = await db.transaction(async (tx) => {
        await tx.query(sql.unsafe`select set_config('statement_timeout', ${String(m.statementTimeoutMs)}, true)`);
        return prune(tx as unknown as DatabasePool, retentionHours, batch, deps.now);
      });
      run[table] += deleted;
      if (deleted < batch) break;
    }
  }
  return run;
}
