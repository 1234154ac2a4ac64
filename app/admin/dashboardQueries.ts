// What operators look at: outbox lag, the job queue (graphile-worker keeps no history, so state
// is derived: running = locked, failed = attempts exhausted, retrying = attempts > 0), workers,
// open orders, open breaks, the callback inbox.
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import type { Databases } from '../db/pools.ts';
import { outboxLag } from '../outbox/relays.ts';
import { OPEN_STATUSES } from '../withdraw/withdrawStateMachine.ts';

export const JOB_STATES = ['queued', 'running', 'retrying', 'failed'] as const;
export type JobState = (typeof JOB_STATES)[number];

const JobsByTaskRow = z.object({
  task: z.string(),
  queued: z.number(),
  running: z.number(),
  retrying: z.number(),
  failed: z.number(),
});
const CountRow = z.object({ key: z.string(), count: z.number() });
const WorkerRow = z.object({ workerId: z.string(), hostname: z.string(), pid: z.number(), startedAt: z.number(), lastSeenAt: z.number() });

export async function overview(databases: Databases) {
  const [balanceOutbox, ledgerOutbox] = await Promise.all([outboxLag(databases.balance), outboxLag(databases.ledger)]);
  const db = databases.balance;
  const [jobs, openOrders, openBreaks, inbox, workers] = await Promise.all([
    db.any(sql.type(JobsByTaskRow)`
      select task_identifier as task,
             count(*) filter (where locked_at is null and attempts = 0)::int as queued,
             count(*) filter (where locked_at is not null)::int as running,
             count(*) filter (where locked_at is null and attempts > 0 and attempts < max_attempts)::int as retrying,
             count(*) filter (where attempts >= max_attempts)::int as failed
        from graphile_worker.jobs group by task_identifier order by task_identifier`),
    db.any(sql.type(CountRow)`
      select status as key, count(*)::int as count from withdraw_orders
       where status = any(${sql.array([...OPEN_STATUSES], 'text')}) group by status`),
    db.any(sql.type(CountRow)`
      select category as key, count(*)::int as count from reconciliation_breaks where resolved_at is null group by category`),
    db.one(sql.type(z.object({ pending: z.number(), oldestAgeSeconds: z.number().nullable() }))`
      select count(*)::int as pending, extract(epoch from now() - min(received_at))::float8 as "oldestAgeSeconds"
        from gateway_inbox where processed_at is null`),
    db.any(sql.type(WorkerRow)`
      select worker_id as "workerId", hostname, pid, started_at as "startedAt", last_seen_at as "lastSeenAt"
        from worker_heartbeats order by last_seen_at desc limit 100`),
  ]);
  return {
    outbox: { balance: balanceOutbox, ledger: ledgerOutbox },
    jobs,
    openOrders: Object.fromEntries(openOrders.map((r) => [r.key, r.count])),
    openBreaks: Object.fromEntries(openBreaks.map((r) => [r.key, r.count])),
    inbox,
    workers: workers.map((w) => ({
      ...w,
      startedAt: new Date(w.startedAt).toISOString(),
      lastSeenAt: new Date(w.lastSeenAt).toISOString(),
    })),
  };
}

const JobRow = z.object({
  id: z.bigint(),
  task: z.string(),
  attempts: z.number(),
  maxAttempts: z.number(),
  runAt: z.number(),
  lockedAt: z.number().nullable(),
  lockedBy: z.string().nullable(),
  lastError: z.string().nullable(),
  key: z.string().nullable(),
  createdAt: z.number(),
  payload: z.string().nullable(),
});

const stateFilter = {
  queued: sql.fragment`j.locked_at is null and j.attempts = 0`,
  running: sql.fragment`locked_at is not null`,
  retrying: sql.fragment`locked_at is null and attempts > 0 and attempts < max_attempts`,
  failed: sql.fragment`attempts >= max_attempts`,
} as const;

export async function listJobs(db: CommonQueryMethods, state: JobState, limit: number) {
  const rows = await db.any(sql.type(JobRow)`
    select j.id, j.task_identifier as task, j.attempts, j.max_attempts as "maxAttempts", j.run_at as "runAt",
           j.locked_at as "lockedAt", j.locked_by as "lockedBy", j.last_error as "lastError", j.key,
           j.created_at as "createdAt",
           -- the public view omits payloads; operators need them to judge a failed job
           (select left(p.payload::text, 2000) from graphile_worker._private_jobs p where p.id = j.id) as payload
      from graphile_worker.jobs j where ${stateFilter[state]} order by j.id limit ${limit}`);
  return rows.map((r) => ({
    ...r,
    id: r.id.toString(),
    runAt: new Date(r.runAt).toISOString(),
    lockedAt: r.lockedAt === null ? null : new Date(r.lockedAt).toISOString(),
    createdAt: new Date(r.createdAt).toISOString(),
  }));
}

/** Runs the jobs again now, with their attempts reset (the SQL function: the JS helper ignores attempts 0). */
export async function retryJobs(db: CommonQueryMethods, jobIds: readonly string[]): Promise<number> {
  if (jobIds.length === 0) return 0;
  const rows = await db.any(sql.type(z.object({ id: z.bigint() }))`
    select id from graphile_worker.reschedule_jobs(${sql.array(jobIds, 'int8')}, run_at := now(), attempts := 0)`);
  return rows.length;
}

const BreakRow = z.object({
  id: z.bigint(),
  category: z.string(),
  subject: z.string(),
  orderId: z.string().nullable(),
  accountId: z.string().nullable(),
  transactionId: z.string().nullable(),
  currency: z.string().nullable(),
  expected: z.string().nullable(),
  actual: z.string().nullable(),
  details: z.unknown(),
  firstSeenAt: z.number(),
  lastSeenAt: z.number(),
  seenCount: z.number(),
  resolvedAt: z.number().nullable(),
  resolution: z.string().nullable(),
});

export async function listBreaks(db: CommonQueryMethods, open: boolean, limit: number) {
  const rows = await db.any(sql.type(BreakRow)`
    select id, category, subject, order_id as "orderId", account_id as "accountId", transaction_id as "transactionId",
           currency, expected, actual, details, first_seen_at as "firstSeenAt", last_seen_at as "lastSeenAt",
           seen_count as "seenCount", resolved_at as "resolvedAt", resolution
      from reconciliation_breaks
     where ${open ? sql.fragment`resolved_at is null` : sql.fragment`resolved_at is not null`}
     order by first_seen_at desc limit ${limit}`);
  return rows.map((r) => ({
    ...r,
    id: r.id.toString(),
    firstSeenAt: new Date(r.firstSeenAt).toISOString(),
    lastSeenAt: new Date(r.lastSeenAt).toISOString(),
    resolvedAt: r.resolvedAt === null ? null : new Date(r.resolvedAt).toISOString(),
    ageSeconds: Math.round((Date.now() - r.firstSeenAt) / 1000),
  }));
}
