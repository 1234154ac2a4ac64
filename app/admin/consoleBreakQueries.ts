// Reconciliation breaks in the console: open ones by category and age (oldest first, through the
// partial index on first_seen_at), resolved ones newest first; keyset-paged by (first_seen_at, id).
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import type { BREAK_AGE_BUCKETS } from '../../reconcile/breakQueries.ts';

export const BREAK_PAGE_MAX = 200;
export type BreakAge = (typeof BREAK_AGE_BUCKETS)[number];

// an age bucket as a range of first_seen_at (the buckets of reconcile/breakQueries.ts)
const AGE_RANGE: Record<BreakAge, ReturnType<typeof sql.fragment>> = {
  '<1h': sql.fragment`b.first_seen_at > now() - interval '1 hour'`,
  '1h-24h': sql.fragment`b.first_seen_at <= now() - interval '1 hour' and b.first_seen_at > now() - interval '1 day'`,
  '1d-7d': sql.fragment`b.first_seen_at <= now() - interval '1 day' and b.first_seen_at > now() - interval '7 days'`,
  '>7d': sql.fragment`b.first_seen_at <= now() - interval '7 days'`,
};

const BreakRow = z.object({
  breakId: z.bigint(),
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
  firstSeenUs: z.bigint(),
  lastSeenAt: z.number(),
  seenCount: z.number(),
  resolvedAt: z.number().nullable(),
  resolution: z.string().nullable(),
  ageSeconds: z.number(),
});
export type BreakRow = z.infer<typeof BreakRow>;

export function breakView(row: BreakRow) {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return {
    breakId: row.breakId.toString(),
    category: row.category,
    subject: row.subject,
    orderId: row.orderId,
    accountId: row.accountId,
    transactionId: row.transactionId,
    currency: row.currency,
    expected: row.expected,
    actual: row.actual,
    details: row.details,
    firstSeenAt: iso(row.firstSeenAt),
    lastSeenAt: iso(row.lastSeenAt),
    seenCount: row.seenCount,
    resolvedAt: iso(row.resolvedAt),
    resolution: row.resolution,
    ageSeconds: row.ageSeconds,
  };
}

export function encodeBreakCursor(row: BreakRow): string {
  return Buffer.from(`${row.firstSeenUs}:${row.breakId}`).toString('base64url');
}

export function decodeBreakCursor(cursor: string): { firstSeenUs: string; breakId: string } | null {
  const [us, id] = Buffer.from(cursor, 'base64url').toString('utf8').split(':');
  return us && id && /^\d{1,19}$/.test(us) && /^\d{1,19}$/.test(id) ? { firstSeenUs: us, breakId: id } : null;
}

export async function listBreaks(
  db: CommonQueryMethods,
  query: {
    open: boolean;
    category: string | null;
    age: BreakAge | null;
    cursor: { firstSeenUs: string; breakId: string } | null;
    limit: number;
  },
): Promise<readonly BreakRow[]> {
  const at = (us: string) => sql.fragment`'epoch'::timestamptz + ${us}::bigint * interval '1 microsecond'`;
  // open: oldest first (the longest-standing disagreement is the most urgent); resolved: newest first
  const page = query.cursor
    ? query.open
      ? sql.fragment`(b.first_seen_at, b.id) > (${at(query.cursor.firstSeenUs)}, ${query.cursor.breakId}::bigint)`
      : sql.fragment`(b.first_seen_at, b.id) < (${at(query.cursor.firstSeenUs)}, ${query.cursor.breakId}::bigint)`
    : sql.fragment`true`;
  return db.any(sql.type(BreakRow)`
    select b.id as "breakId", b.category, b.subject, b.order_id as "orderId", b.account_id as "accountId",
           b.transaction_id as "transactionId", b.currency, b.expected, b.actual, b.details,
           b.first_seen_at as "firstSeenAt", (extract(epoch from b.first_seen_at) * 1000000)::bigint as "firstSeenUs",
           b.last_seen_at as "lastSeenAt", b.seen_count as "seenCount", b.resolved_at as "resolvedAt", b.resolution,
           extract(epoch from now() - b.first_seen_at)::float8 as "ageSeconds"
      from reconciliation_breaks b
     where ${query.open ? sql.fragment`b.resolved_at is null` : sql.fragment`b.resolved_at is not null`}
       and ${query.category ? sql.fragment`b.category = ${query.category}` : sql.fragment`true`}
       and ${query.age ? AGE_RANGE[query.age] : sql.fragment`true`}
       and ${page}
     order by ${query.open ? sql.fragment`b.first_seen_at, b.id` : sql.fragment`b.first_seen_at desc, b.id desc`}
     limit ${Math.min(query.limit, BREAK_PAGE_MAX)}`);
}

export async function breakCategories(db: CommonQueryMethods): Promise<readonly string[]> {
  return db.anyFirst(sql.type(z.object({ category: z.string() }))`
    select distinct category from reconciliation_breaks where resolved_at is null order by category limit 100`);
}

/** Closes an open break with the operator's note; null when it is not open (resolved meanwhile, or no such break). */
export async function resolveBreak(db: CommonQueryMethods, breakId: string, resolution: string) {
  return db.maybeOne(sql.type(z.object({ breakId: z.bigint(), category: z.string(), subject: z.string() }))`
    update reconciliation_breaks set resolved_at = now(), resolution = ${resolution}
     where id = ${breakId} and resolved_at is null
    returning id as "breakId", category, subject`);
}
