// What the console's overview shows, each read bounded and through an index: orders per hour by
// status over 24 h (withdraw_orders_created_idx, index-only), throughput per minute over the last
// hour (orders accepted, and final transitions through the BRIN index on the status history),
// outbox lag per database, callbacks pending, the provider's error rate over its latest calls,
// open breaks by age, workers alive, jobs by task and state, manual reviews, pending approvals.
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import type { Databases } from '../db/pools.ts';
import { outboxLag } from '../outbox/relays.ts';
import { openBreaksByAge } from '../../reconcile/breakQueries.ts';
import { pendingApprovalCount } from './approvalQueries.ts';

/** Provider calls looked at for the error rate: the latest this many (by id), within the window. */
export const PROVIDER_CALLS_SAMPLED_MAX = 5_000;
export const PROVIDER_WINDOW_MINUTES = 15;

const HourRow = z.object({ hourMs: z.number(), status: z.string(), count: z.number() });
const MinuteRow = z.object({ minuteMs: z.number(), series: z.string(), count: z.number() });
const CountRow = z.object({ key: z.string(), count: z.number() });
const JobsByTaskRow = z.object({ task: z.string(), queued: z.number(), running: z.number(), retrying: z.number(), failed: z.number() });
const WorkerRow = z.object({ workerId: z.string(), hostname: z.string(), pid: z.number(), lastSeenAt: z.number(), alive: z.boolean() });

export async function ordersPerHour(db: CommonQueryMethods) {
  return db.any(sql.type(HourRow)`
    select extract(epoch from date_trunc('hour', created_at))::float8 * 1000 as "hourMs", status, count(*)::int as count
      from withdraw_orders where created_at > date_trunc('hour', now()) - interval '23 hours'
     group by 1, 2 order by 1, 2`);
}

export async function throughputPerMinute(db: CommonQueryMethods) {
  return db.any(sql.type(MinuteRow)`
    select extract(epoch from date_trunc('minute', created_at))::float8 * 1000 as "minuteMs", 'accepted' as series, count(*)::int as count
      from withdraw_orders where created_at > date_trunc('minute', now()) - interval '59 minutes' group by 1
    union all
    select extract(epoch from date_trunc('minute', created_at))::float8 * 1000, to_status, count(*)::int
      from withdraw_status_history
     where created_at > date_trunc('minute', now()) - interval '59 minutes' and to_status in ('success', 'failed', 'manual')
     group by 1, 2
    order by 1`);
}

const ProviderRow = z.object({
  calls: z.number(),
  accepted: z.number(),
  rejected: z.number(),
  unknown: z.number(),
  oldestAt: z.number().nullable(),
});

/** Submissions to the provider over the last PROVIDER_WINDOW_MINUTES (at most the latest PROVIDER_CALLS_SAMPLED_MAX). */
export async function providerErrorRate(db: CommonQueryMethods) {
  const row = await db.one(sql.type(ProviderRow)`
    select count(*)::int as calls,
           count(*) filter (where result = 'accepted')::int as accepted,
           count(*) filter (where result = 'rejected')::int as rejected,
           count(*) filter (where result = 'unknown')::int as unknown,
           min(created_at) as "oldestAt"
      from (select result, created_at from gateway_submit_attempts order by id desc limit ${PROVIDER_CALLS_SAMPLED_MAX}) latest
     where created_at > now() - make_interval(mins => ${PROVIDER_WINDOW_MINUTES})`);
  return {
    ...row,
    oldestAt: row.oldestAt === null ? null : new Date(row.oldestAt).toISOString(),
    windowMinutes: PROVIDER_WINDOW_MINUTES,
    sampledMax: PROVIDER_CALLS_SAMPLED_MAX,
    // an unknown outcome (timeout, 5xx, reset) is the provider failing; a rejection is its answer
    errorRate: row.calls === 0 ? 0 : row.unknown / row.calls,
  };
}

async function jobsByTask(db: CommonQueryMethods) {
  return db.any(sql.type(JobsByTaskRow)`
    select task_identifier as task,
           count(*) filter (where locked_at is null and attempts = 0)::int as queued,
           count(*) filter (where locked_at is not null)::int as running,
           count(*) filter (where locked_at is null and attempts > 0 and attempts < max_attempts)::int as retrying,
           count(*) filter (where locked_at is null and attempts >= max_attempts)::int as failed
      from graphile_worker.jobs group by task_identifier order by task_identifier`);
}

async function workers(db: CommonQueryMethods, staleAfterMs: number) {
  const rows = await db.any(sql.type(WorkerRow)`
    select worker_id as "workerId", hostname, pid, last_seen_at as "lastSeenAt",
           last_seen_at > now() - make_interval(secs => ${staleAfterMs / 1000}) as alive
      from worker_heartbeats order by last_seen_at desc limit 100`);
  return rows.map((w) => ({ ...w, lastSeenAt: new Date(w.lastSeenAt).toISOString() }));
}

export async function consoleOverview(databases: Databases, settings: { workerStaleAfterMs: number }) {
  const db = databases.balance;
  const [balanceOutbox, ledgerOutbox, perHour, perMinute, provider, jobs, openOrders, breaks, inbox, alive, approvals] = await Promise.all([
    outboxLag(databases.balance),
    outboxLag(databases.ledger),
    ordersPerHour(db),
    throughputPerMinute(db),
    providerErrorRate(db),
    jobsByTask(db),
    db.any(sql.type(CountRow)`
        select status as key, count(*)::int as count from withdraw_orders
         where status in ('init', 'processing', 'manual') group by status`),
    openBreaksByAge(db),
    db.one(sql.type(z.object({ pending: z.number(), oldestAgeSeconds: z.number().nullable() }))`
        select count(*)::int as pending, extract(epoch from now() - min(received_at))::float8 as "oldestAgeSeconds"
          from gateway_inbox where processed_at is null`),
    workers(db, settings.workerStaleAfterMs),
    pendingApprovalCount(db),
  ]);
  return {
    outbox: { balance: balanceOutbox, ledger: ledgerOutbox },
    ordersPerHour: perHour,
    throughputPerMinute: perMinute,
    provider,
    jobs,
    openOrders: Object.fromEntries(openOrders.map((r) => [r.key, r.count])),
    openBreaks: breaks,
    callbacks: inbox,
    workers: alive,
    pendingApprovals: approvals,
  };
}
