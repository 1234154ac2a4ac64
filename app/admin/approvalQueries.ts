// Dual-control requests on the Balance DB (approval_requests, sql/balance/0011_operations_console.sql).
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';

export const APPROVAL_KINDS = ['account.credit', 'withdraw.resolve_override', 'jobs.retry'] as const;
export type ApprovalKind = (typeof APPROVAL_KINDS)[number];
export const APPROVAL_STATUSES = ['pending', 'approved', 'failed', 'rejected', 'cancelled', 'expired'] as const;
export type ApprovalStatus = (typeof APPROVAL_STATUSES)[number];
const LIST_LIMIT_MAX = 200;

const ApprovalRow = z.object({
  approvalId: z.bigint(),
  kind: z.enum(APPROVAL_KINDS),
  subject: z.string(),
  payload: z.record(z.unknown()),
  reason: z.string(),
  status: z.enum(APPROVAL_STATUSES),
  makerId: z.bigint(),
  maker: z.string(),
  checkerId: z.bigint().nullable(),
  checker: z.string().nullable(),
  createdAt: z.number(),
  expiresAt: z.number(),
  decidedAt: z.number().nullable(),
  decisionNote: z.string().nullable(),
  outcome: z.string().nullable(),
  result: z.unknown(),
  expired: z.boolean(),
});
export type ApprovalRow = z.infer<typeof ApprovalRow>;

const approvalColumns = sql.fragment`
  r.id as "approvalId", r.kind, r.subject, r.payload, r.reason, r.status, r.maker_id as "makerId", m.login as maker,
  r.checker_id as "checkerId", c.login as checker, r.created_at as "createdAt", r.expires_at as "expiresAt",
  r.decided_at as "decidedAt", r.decision_note as "decisionNote", r.outcome, r.result,
  r.status = 'pending' and r.expires_at <= now() as expired`;

const fromApprovals = sql.fragment`
  approval_requests r join operators m on m.id = r.maker_id left join operators c on c.id = r.checker_id`;

export async function insertApproval(
  db: CommonQueryMethods,
  input: { kind: ApprovalKind; subject: string; payload: Record<string, unknown>; reason: string; makerId: string; ttlHours: number },
): Promise<ApprovalRow> {
  return db.one(sql.type(ApprovalRow)`
    with r as (
      insert into approval_requests (kind, subject, payload, reason, maker_id, expires_at)
      values (${input.kind}, ${input.subject}, ${sql.jsonb(input.payload as Parameters<typeof sql.jsonb>[0])}, ${input.reason},
              ${input.makerId}, now() + make_interval(hours => ${input.ttlHours}))
      returning *
    )
    select ${approvalColumns} from r join operators m on m.id = r.maker_id left join operators c on c.id = r.checker_id`);
}

export async function findApproval(db: CommonQueryMethods, approvalId: string): Promise<ApprovalRow | null> {
  return db.maybeOne(sql.type(ApprovalRow)`select ${approvalColumns} from ${fromApprovals} where r.id = ${approvalId}`);
}

/** Pending (oldest first) or decided (newest first), keyset-paged by id. */
export async function listApprovals(
  db: CommonQueryMethods,
  query: { state: 'pending' | 'decided'; beforeId: string | null; limit: number },
): Promise<readonly ApprovalRow[]> {
  const limit = Math.min(query.limit, LIST_LIMIT_MAX);
  if (query.state === 'pending') {
    return db.any(sql.type(ApprovalRow)`
      select ${approvalColumns} from ${fromApprovals}
       where r.status = 'pending' order by r.created_at, r.id limit ${limit}`);
  }
  return db.any(sql.type(ApprovalRow)`
    select ${approvalColumns} from ${fromApprovals}
     where r.status <> 'pending' ${query.beforeId ? sql.fragment`and r.id < ${query.beforeId}` : sql.fragment``}
     order by r.id desc limit ${limit}`);
}

/**
 * The decision, conditional on the request still pending and not expired, and (for approve and
 * reject) on the checker not being its maker: two checkers at once, or the same one twice, decide it
 * once. Null when nothing changed.
 */
export async function decideApproval(
  db: CommonQueryMethods,
  input: {
    approvalId: string;
    status: Exclude<ApprovalStatus, 'pending' | 'expired'>;
    checkerId: string | null;
    note: string | null;
    outcome?: string | null;
    result?: unknown;
  },
): Promise<ApprovalRow | null> {
  return db.maybeOne(sql.type(ApprovalRow)`
    with r as (
      update approval_requests set status = ${input.status}, checker_id = ${input.checkerId}, decided_at = now(),
             decision_note = ${input.note}, outcome = ${input.outcome ?? null},
             result = ${input.result === undefined ? null : sql.jsonb(input.result as Parameters<typeof sql.jsonb>[0])}
       where id = ${input.approvalId} and status = 'pending' and expires_at > now()
         ${input.checkerId === null ? sql.fragment`` : sql.fragment`and maker_id <> ${input.checkerId}`}
      returning *
    )
    select ${approvalColumns} from r join operators m on m.id = r.maker_id left join operators c on c.id = r.checker_id`);
}

/** Records what the approved action answered (in the approval's transaction). */
export async function setApprovalOutcome(
  db: CommonQueryMethods,
  approvalId: string,
  status: 'approved' | 'failed',
  outcome: string,
  result: Record<string, unknown>,
): Promise<void> {
  await db.query(sql.unsafe`
    update approval_requests set status = ${status}, outcome = ${outcome},
           result = ${sql.jsonb(result as Parameters<typeof sql.jsonb>[0])}
     where id = ${approvalId}`);
}

export async function expireApproval(db: CommonQueryMethods, approvalId: string): Promise<boolean> {
  const result = await db.query(sql.unsafe`
    update approval_requests set status = 'expired', decided_at = now()
     where id = ${approvalId} and status = 'pending' and expires_at <= now()`);
  return result.rowCount === 1;
}

export async function pendingApprovalCount(db: CommonQueryMethods): Promise<number> {
  return db.oneFirst(sql.type(z.object({ count: z.number() }))`
    select count(*)::int as count from approval_requests where status = 'pending' and expires_at > now()`);
}

/** A pending request of this kind on this subject (one at a time: the second would double the action). */
export async function pendingOnSubject(db: CommonQueryMethods, kind: ApprovalKind, subject: string): Promise<bigint | null> {
  return db.maybeOneFirst(sql.type(z.object({ id: z.bigint() }))`
    select id from approval_requests
     where subject = ${subject} and kind = ${kind} and status = 'pending' and expires_at > now() limit 1`);
}
