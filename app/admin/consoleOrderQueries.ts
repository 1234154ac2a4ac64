// Orders in the console: search (by order id, transaction id or account id, all indexed uuids, or by
// user id), keyset-paged newest first by (created_at, id); and one order's whole story from both
// databases: its account and hold, the Ledger DB's journals and entries for its transaction id, the
// queued jobs that carry it, its breaks, its audit trail and dual-control requests.
import { sql, type CommonQueryMethods, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { WITHDRAW_STATUSES, type WithdrawStatus } from '../withdraw/withdrawStateMachine.ts';
import { orderColumns, OrderRow } from '../withdraw/withdrawQueries.ts';

export const ORDER_PAGE_MAX = 100;
/** Queued jobs scanned for one order's transaction id (graphile-worker keeps no index on payloads). */
export const JOBS_SCANNED_FOR_ORDER_MAX = 200_000;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const SearchRow = OrderRow.extend({ createdUs: z.bigint() });
export type SearchRow = z.infer<typeof SearchRow>;

/** A keyset cursor: the last row's created_at in microseconds since the epoch and its id. */
export type OrderCursor = Readonly<{ createdUs: bigint; orderId: string }>;

export function encodeOrderCursor(row: SearchRow): string {
  return Buffer.from(`${row.createdUs}:${row.orderId}`).toString('base64url');
}

export function decodeOrderCursor(cursor: string): OrderCursor | null {
  const [us, id] = Buffer.from(cursor, 'base64url').toString('utf8').split(':');
  if (!us || !id || !/^\d{1,19}$/.test(us) || !UUID.test(id)) return null;
  return { createdUs: BigInt(us), orderId: id.toLowerCase() };
}

export async function searchOrders(
  db: CommonQueryMethods,
  query: { q: string | null; status: WithdrawStatus | null; cursor: OrderCursor | null; limit: number },
): Promise<readonly SearchRow[]> {
  const q = query.q?.trim() ?? '';
  const match =
    q === ''
      ? sql.fragment`true`
      : UUID.test(q)
        ? sql.fragment`(o.id = ${q.toLowerCase()} or o.transaction_id = ${q.toLowerCase()} or o.account_id = ${q.toLowerCase()})`
        : sql.fragment`o.user_id = ${q}`;
  const status = query.status ? sql.fragment`o.status = ${query.status}` : sql.fragment`true`;
  const after = query.cursor
    ? sql.fragment`(o.created_at, o.id) < ('epoch'::timestamptz + ${query.cursor.createdUs.toString()}::bigint * interval '1 microsecond', ${query.cursor.orderId}::uuid)`
    : sql.fragment`true`;
  return db.any(sql.type(SearchRow)`
    select ${orderColumns}, (extract(epoch from o.created_at) * 1000000)::bigint as "createdUs"
      from withdraw_orders o
     where ${match} and ${status} and ${after}
     order by o.created_at desc, o.id desc
     limit ${Math.min(query.limit, ORDER_PAGE_MAX)}`);
}

const AccountRow = z.object({
  accountId: z.string(),
  userId: z.string(),
  currency: z.string(),
  status: z.string(),
  balanceMinor: z.bigint(),
  availableMinor: z.bigint(),
  reservedMinor: z.bigint(),
});
const ReservationRow = z.object({ status: z.string(), amountMinor: z.bigint(), updatedAt: z.number() });
const BreakRow = z.object({
  breakId: z.bigint(),
  category: z.string(),
  expected: z.string().nullable(),
  actual: z.string().nullable(),
  firstSeenAt: z.number(),
  resolvedAt: z.number().nullable(),
  resolution: z.string().nullable(),
});
const AuditRow = z.object({ auditId: z.bigint(), operator: z.string(), action: z.string(), details: z.unknown(), at: z.number() });
const JobRow = z.object({
  jobId: z.bigint(),
  task: z.string(),
  attempts: z.number(),
  maxAttempts: z.number(),
  runAt: z.number(),
  lockedAt: z.number().nullable(),
  lastError: z.string().nullable(),
});

export async function orderContext(db: CommonQueryMethods, order: { orderId: string; accountId: string; transactionId: string }) {
  const [account, reservation, breaks, audit, jobs] = await Promise.all([
    db.maybeOne(sql.type(AccountRow)`
      select id as "accountId", user_id as "userId", currency, status, balance_minor as "balanceMinor",
             available_minor as "availableMinor", reserved_minor as "reservedMinor"
        from accounts where id = ${order.accountId}`),
    db.maybeOne(sql.type(ReservationRow)`
      select status, amount_minor as "amountMinor", updated_at as "updatedAt" from reservations where transaction_id = ${order.transactionId}`),
    db.any(sql.type(BreakRow)`
      select id as "breakId", category, expected, actual, first_seen_at as "firstSeenAt", resolved_at as "resolvedAt", resolution
        from reconciliation_breaks where subject = ${`order:${order.orderId}`} or transaction_id = ${order.transactionId}
       order by id desc limit 50`),
    db.any(sql.type(AuditRow)`
      select id as "auditId", operator, action, details, created_at as at from admin_audit_log
       where subject = ${`order:${order.orderId}`} order by id limit 200`),
    jobsForTransaction(db, order.transactionId),
  ]);
  return { account, reservation, breaks, audit, jobs };
}

/** Queued, running or failed jobs whose payload names the transaction (completed jobs are deleted). */
export async function jobsForTransaction(db: CommonQueryMethods, transactionId: string) {
  return db.any(sql.type(JobRow)`
    select j.id as "jobId", t.identifier as task, j.attempts, j.max_attempts as "maxAttempts", j.run_at as "runAt",
           j.locked_at as "lockedAt", j.last_error as "lastError"
      from (select * from graphile_worker._private_jobs order by id desc limit ${JOBS_SCANNED_FOR_ORDER_MAX}) j
      join graphile_worker._private_tasks t on t.id = j.task_id
     where strpos(j.payload::text, ${transactionId}) > 0
     order by j.id desc limit 50`);
}

const JournalRow = z.object({
  journalId: z.bigint(),
  kind: z.string(),
  source: z.string(),
  createdAt: z.number(),
  entries: z.array(
    z.object({
      entryId: z.number(),
      account: z.string(),
      accountKind: z.string(),
      amountMinor: z.string(),
      currency: z.string(),
      balanceAfterMinor: z.string(),
      sequence: z.number(),
    }),
  ),
});

/** The Ledger DB's side: every journal of the transaction with its entries (amounts as exact strings). */
export async function ledgerJournals(ledger: DatabasePool, transactionId: string) {
  return ledger.any(sql.type(JournalRow)`
    select j.id as "journalId", j.kind, j.source, j.created_at as "createdAt",
           coalesce((select jsonb_agg(jsonb_build_object('entryId', e.id, 'account', a.code, 'accountKind', a.kind,
                        'amountMinor', e.amount_minor::text, 'currency', e.currency,
                        'balanceAfterMinor', e.current_balance_minor::text, 'sequence', e.account_sequence) order by e.id)
                       from entries e join ledger_accounts a on a.id = e.ledger_account_id where e.journal_id = j.id), '[]'::jsonb) as entries
      from journal_transactions j where j.transaction_id = ${transactionId} order by j.id`);
}

export const ORDER_STATUSES = WITHDRAW_STATUSES;
