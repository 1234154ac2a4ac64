// The console's overview, reconciliation breaks (list by category and age, resolve with a note),
// the provider's latest calls, accounts (for credits) and the audit trail.
import type { Request, Response, Router } from 'express';
import express from 'express';
import { sql } from 'slonik';
import { z as zod } from 'zod';
import type { Config } from '../config.ts';
import type { Databases } from '../db/pools.ts';
import { ApiError, okEnvelope } from '../http/apiErrors.ts';
import { readBody } from '../http/jsonBody.ts';
import { z } from '../http/zod.ts';
import { formatMinor, isCurrency } from '../money/money.ts';
import { BREAK_AGE_BUCKETS } from '../../reconcile/breakQueries.ts';
import { recordAudit } from './auditLog.ts';
import { breakCategories, breakView, decodeBreakCursor, encodeBreakCursor, listBreaks, resolveBreak } from './consoleBreakQueries.ts';
import { bigintId, bigintParam, consoleAudit, parse, privateResponse, uuidParam } from './consoleHttp.ts';
import { consoleOverview } from './consoleOverviewQueries.ts';
import { operatorOf, requireOperator, type SessionSettings } from './consoleSession.ts';

export const BreaksQuery = z.object({
  state: z.enum(['open', 'resolved']).default('open'),
  category: z.string().max(100).optional(),
  age: z.enum(BREAK_AGE_BUCKETS).optional(),
  cursor: z.string().max(200).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
});
export const ResolveBreakBody = z.object({ note: z.string().trim().min(3).max(500) });
export const AuditQuery = z.object({
  operator: z.string().max(64).optional(),
  subject: z.string().max(200).optional(),
  before: bigintId.optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
});
export const CallsQuery = z.object({
  result: z.enum(['accepted', 'rejected', 'unknown']).optional(),
  before: bigintId.optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
});
export const AccountsQuery = z.object({ userId: z.string().trim().min(1).max(128) });
export const OutboxQuery = z.object({ db: z.enum(['balance', 'ledger']).default('balance') });
const WAITING_SHOWN_MAX = 100;

const AuditRow = zod.object({
  auditId: zod.bigint(),
  operator: zod.string(),
  operatorId: zod.bigint().nullable(),
  action: zod.string(),
  subject: zod.string(),
  details: zod.unknown(),
  requestId: zod.string().nullable(),
  at: zod.number(),
});
const CallRow = zod.object({
  callId: zod.bigint(),
  transactionId: zod.string(),
  orderId: zod.string().nullable(),
  result: zod.string(),
  httpStatus: zod.number().nullable(),
  detail: zod.unknown(),
  durationMs: zod.number().nullable(),
  at: zod.number(),
});
const AccountRow = zod.object({
  accountId: zod.string(),
  userId: zod.string(),
  currency: zod.string(),
  status: zod.string(),
  balanceMinor: zod.bigint(),
  availableMinor: zod.bigint(),
  reservedMinor: zod.bigint(),
});
const OutboxRow = zod.object({ outboxId: zod.bigint(), topic: zod.string(), transactionId: zod.string(), ageSeconds: zod.number() });
const InboxRow = zod.object({
  inboxId: zod.bigint(),
  eventId: zod.string(),
  reference: zod.string(),
  status: zod.string(),
  receivedAt: zod.number(),
  attempts: zod.number(),
  lastError: zod.string().nullable(),
});
const CreditRow = zod.object({ transactionId: zod.string(), amountMinor: zod.bigint(), actor: zod.string(), at: zod.number() });

const iso = (ms: number) => new Date(ms).toISOString();
const money = (minor: bigint, currency: string) => (isCurrency(currency) ? formatMinor(minor, currency) : minor.toString());

export function consoleOpsRoutes(deps: { databases: Databases; config: Config; session: SessionSettings }): Router {
  const router = express.Router();
  const db = deps.databases.balance;
  const role = (least: 'viewer' | 'operator') => requireOperator(db, deps.session, least);

  router.get('/admin/console/api/overview', privateResponse, role('viewer'), async (_req: Request, res: Response) => {
    const overview = await consoleOverview(deps.databases, { workerStaleAfterMs: deps.config.worker.staleAfterMs });
    res.status(200).json(okEnvelope('ok', overview));
  });

  router.get('/admin/console/api/breaks', privateResponse, role('viewer'), async (req: Request, res: Response) => {
    const query = parse(BreaksQuery, req.query);
    const cursor = query.cursor ? decodeBreakCursor(query.cursor) : null;
    if (query.cursor && !cursor) throw new ApiError('invalid_request', 'cursor: not one this API gave');
    const [rows, categories] = await Promise.all([
      listBreaks(db, {
        open: query.state === 'open',
        category: query.category ?? null,
        age: query.age ?? null,
        cursor,
        limit: query.limit + 1,
      }),
      breakCategories(db),
    ]);
    const page = rows.slice(0, query.limit);
    res.status(200).json(
      okEnvelope('ok', {
        breaks: page.map(breakView),
        nextCursor: rows.length > query.limit ? encodeBreakCursor(page.at(-1)!) : null,
        categories,
      }),
    );
  });

  router.post('/admin/console/api/breaks/:breakId/resolve', privateResponse, role('operator'), async (req: Request, res: Response) => {
    const breakId = bigintParam(req, 'breakId', 'break');
    const body = parse(ResolveBreakBody, readBody(req));
    const operator = operatorOf(req);
    const resolved = await db.transaction(async (tx) => {
      const row = await resolveBreak(tx, breakId, `${operator.login}: ${body.note}`);
      if (row) {
        await recordAudit(
          tx,
          consoleAudit(req, 'break.resolve', `break:${breakId}`, { category: row.category, subject: row.subject, resolution: body.note }),
        );
      }
      return row;
    });
    if (!resolved) throw new ApiError('not_found', 'no such open break (resolved meanwhile?)');
    res
      .status(200)
      .json(okEnvelope('resolved', { breakId, category: resolved.category, subject: resolved.subject, operator: operator.login }));
  });

  router.get('/admin/console/api/provider-calls', privateResponse, role('viewer'), async (req: Request, res: Response) => {
    const query = parse(CallsQuery, req.query);
    const rows = await db.any(sql.type(CallRow)`
      select a.id as "callId", a.transaction_id as "transactionId", o.id as "orderId", a.result, a.http_status as "httpStatus",
             a.detail, a.duration_ms as "durationMs", a.created_at as at
        from gateway_submit_attempts a left join withdraw_orders o on o.transaction_id = a.transaction_id
       where ${query.result ? sql.fragment`a.result = ${query.result}` : sql.fragment`true`}
         and ${query.before ? sql.fragment`a.id < ${query.before}` : sql.fragment`true`}
       order by a.id desc limit ${query.limit + 1}`);
    const page = rows.slice(0, query.limit);
    res.status(200).json(
      okEnvelope('ok', {
        calls: page.map((r) => ({ ...r, callId: r.callId.toString(), at: iso(r.at) })),
        nextBefore: rows.length > query.limit ? page.at(-1)!.callId.toString() : null,
      }),
    );
  });

  // what the lag cards count, oldest first, through the partial indexes on what is still waiting
  router.get('/admin/console/api/outbox', privateResponse, role('viewer'), async (req: Request, res: Response) => {
    const query = parse(OutboxQuery, req.query);
    const target = query.db === 'ledger' ? deps.databases.ledger : db;
    const [rows, unrelayed] = await Promise.all([
      target.any(sql.type(OutboxRow)`
        select id as "outboxId", topic, transaction_id as "transactionId", extract(epoch from now() - created_at)::float8 as "ageSeconds"
          from outbox where relayed_at is null order by id limit ${WAITING_SHOWN_MAX}`),
      target.oneFirst(sql.type(zod.object({ count: zod.number() }))`select count(*)::int as count from outbox where relayed_at is null`),
    ]);
    res.status(200).json(okEnvelope('ok', { db: query.db, unrelayed, rows: rows.map((r) => ({ ...r, outboxId: r.outboxId.toString() })) }));
  });

  router.get('/admin/console/api/callbacks', privateResponse, role('viewer'), async (_req: Request, res: Response) => {
    const [rows, pending] = await Promise.all([
      db.any(sql.type(InboxRow)`
        select id as "inboxId", event_id as "eventId", reference, status, received_at as "receivedAt", attempts, last_error as "lastError"
          from gateway_inbox where processed_at is null order by id limit ${WAITING_SHOWN_MAX}`),
      db.oneFirst(
        sql.type(zod.object({ count: zod.number() }))`select count(*)::int as count from gateway_inbox where processed_at is null`,
      ),
    ]);
    res
      .status(200)
      .json(
        okEnvelope('ok', { pending, callbacks: rows.map((r) => ({ ...r, inboxId: r.inboxId.toString(), receivedAt: iso(r.receivedAt) })) }),
      );
  });

  router.get('/admin/console/api/accounts', privateResponse, role('viewer'), async (req: Request, res: Response) => {
    const query = parse(AccountsQuery, req.query);
    const rows = await db.any(sql.type(AccountRow)`
      select id as "accountId", user_id as "userId", currency, status, balance_minor as "balanceMinor",
             available_minor as "availableMinor", reserved_minor as "reservedMinor"
        from accounts where user_id = ${query.userId} order by created_at limit 100`);
    res.status(200).json(okEnvelope('ok', { accounts: rows.map(accountView) }));
  });

  router.get('/admin/console/api/accounts/:accountId', privateResponse, role('viewer'), async (req: Request, res: Response) => {
    const accountId = uuidParam(req, 'accountId', 'account');
    const account = await db.maybeOne(sql.type(AccountRow)`
      select id as "accountId", user_id as "userId", currency, status, balance_minor as "balanceMinor",
             available_minor as "availableMinor", reserved_minor as "reservedMinor"
        from accounts where id = ${accountId}`);
    if (!account) throw new ApiError('not_found', 'no such account');
    const credits = await db.any(sql.type(CreditRow)`
      select transaction_id as "transactionId", amount_minor as "amountMinor", actor, created_at as at
        from credits where account_id = ${accountId} order by created_at desc limit 50`);
    res.status(200).json(
      okEnvelope('ok', {
        account: accountView(account),
        credits: credits.map((c) => ({
          transactionId: c.transactionId,
          amount: money(c.amountMinor, account.currency),
          actor: c.actor,
          at: iso(c.at),
        })),
      }),
    );
  });

  router.get('/admin/console/api/audit', privateResponse, role('viewer'), async (req: Request, res: Response) => {
    const query = parse(AuditQuery, req.query);
    const rows = await db.any(sql.type(AuditRow)`
      select id as "auditId", operator, operator_id as "operatorId", action, subject, details, request_id as "requestId", created_at as at
        from admin_audit_log
       where ${query.operator ? sql.fragment`operator = ${query.operator}` : sql.fragment`true`}
         and ${query.subject ? sql.fragment`subject = ${query.subject}` : sql.fragment`true`}
         and ${query.before ? sql.fragment`id < ${query.before}` : sql.fragment`true`}
       order by id desc limit ${query.limit + 1}`);
    const page = rows.slice(0, query.limit);
    res.status(200).json(
      okEnvelope('ok', {
        entries: page.map((r) => ({ ...r, auditId: r.auditId.toString(), operatorId: r.operatorId?.toString() ?? null, at: iso(r.at) })),
        nextBefore: rows.length > query.limit ? page.at(-1)!.auditId.toString() : null,
      }),
    );
  });

  return router;
}

function accountView(row: zod.infer<typeof AccountRow>) {
  return {
    accountId: row.accountId,
    userId: row.userId,
    currency: row.currency,
    status: row.status,
    balance: money(row.balanceMinor, row.currency),
    available: money(row.availableMinor, row.currency),
    reserved: money(row.reservedMinor, row.currency),
  };
}
