// The console's orders: search, one order's timeline across both databases, the manual review
// queue with the provider's current answer, and resolving through the manual-review service
// (manualReview.ts: the same guard as the admin API). Resolving failed against the provider's answer
// (the override) is a dual-control request.
import type { Request, Response, Router } from 'express';
import express from 'express';
import { LRUCache } from 'lru-cache';
import { sql, type DatabasePool } from 'slonik';
import { z as zod } from 'zod';
import type { Databases } from '../db/pools.ts';
import { ApiError, okEnvelope } from '../http/apiErrors.ts';
import { readBody } from '../http/jsonBody.ts';
import { z } from '../http/zod.ts';
import { formatMinor, isCurrency } from '../money/money.ts';
import { WITHDRAW_STATUSES } from '../withdraw/withdrawStateMachine.ts';
import { orderView } from '../withdraw/withdrawService.ts';
import { pendingOnSubject } from './approvalQueries.ts';
import type { Approvals } from './approvals.ts';
import { parse, privateResponse, uuidParam } from './consoleHttp.ts';
import { decodeOrderCursor, encodeOrderCursor, ledgerJournals, orderContext, searchOrders } from './consoleOrderQueries.ts';
import { operatorOf, requireOperator, type SessionSettings } from './consoleSession.ts';
import type { ManualReview, ProviderVerdict } from './manualReview.ts';
import type { OrderWithEvidence } from './manualReviewQueries.ts';

export const SearchQuery = z.object({
  q: z.string().trim().max(128).optional(),
  status: z.enum(WITHDRAW_STATUSES).optional(),
  cursor: z.string().max(200).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(50),
});
export const ReviewQuery = z.object({ limit: z.coerce.number().int().min(1).max(100).default(25) });
const reason = z.string().trim().min(3).max(500);
export const ResolveBody = z.object({ outcome: z.enum(['success', 'failed']), reason });
export const OverrideBody = z.object({ reason });
// the provider's answer shown with an order is at most this old (asking it for every refresh of
// every screen would be a load of our own making)
const PROVIDER_ANSWER_TTL_MS = 30_000;
const PROVIDER_ASKS_AT_ONCE = 4;

type Answer = ProviderVerdict & { askedAt: string };

// the manual queue's size, through the open-orders index
const countManual = sql.type(zod.object({ count: zod.number() }))`
  select count(*)::int as count from withdraw_orders where status = 'manual'`;

function money(minor: bigint, currency: string) {
  return isCurrency(currency) ? formatMinor(minor, currency) : minor.toString();
}

function evidenceView(order: OrderWithEvidence) {
  return { ...orderView(order), userId: order.userId, evidence: order.evidence };
}

type OrderContext = Awaited<ReturnType<typeof orderContext>>;
type Journals = Awaited<ReturnType<typeof ledgerJournals>>;

/** One order's page: the order with its evidence, its account and hold, both databases' records. */
function orderDetailView(order: OrderWithEvidence, context: OrderContext, ledger: Journals, pendingOverride: bigint | null) {
  const account = context.account;
  return {
    order: evidenceView(order),
    account: account && {
      accountId: account.accountId,
      userId: account.userId,
      currency: account.currency,
      status: account.status,
      balance: money(account.balanceMinor, account.currency),
      available: money(account.availableMinor, account.currency),
      reserved: money(account.reservedMinor, account.currency),
    },
    reservation: context.reservation && {
      status: context.reservation.status,
      amount: money(context.reservation.amountMinor, order.currency),
      updatedAt: new Date(context.reservation.updatedAt).toISOString(),
    },
    ledger: ledger.map((journal) => ({
      ...journal,
      journalId: journal.journalId.toString(),
      createdAt: new Date(journal.createdAt).toISOString(),
      entries: journal.entries.map((e) => ({
        ...e,
        amount: money(BigInt(e.amountMinor), e.currency),
        balanceAfter: money(BigInt(e.balanceAfterMinor), e.currency),
      })),
    })),
    jobs: context.jobs.map((job) => ({
      ...job,
      jobId: job.jobId.toString(),
      runAt: new Date(job.runAt).toISOString(),
      lockedAt: job.lockedAt === null ? null : new Date(job.lockedAt).toISOString(),
    })),
    breaks: context.breaks.map((b) => ({
      ...b,
      breakId: b.breakId.toString(),
      firstSeenAt: new Date(b.firstSeenAt).toISOString(),
      resolvedAt: b.resolvedAt === null ? null : new Date(b.resolvedAt).toISOString(),
    })),
    audit: context.audit.map((a) => ({ ...a, auditId: a.auditId.toString(), at: new Date(a.at).toISOString() })),
    pendingOverride: pendingOverride === null ? null : pendingOverride.toString(),
  };
}

export function consoleOrderRoutes(deps: {
  databases: Databases;
  review: ManualReview;
  approvals: Approvals;
  session: SessionSettings;
}): Router {
  const router = express.Router();
  const db: DatabasePool = deps.databases.balance;
  const role = (least: 'viewer' | 'operator') => requireOperator(db, deps.session, least);
  const answers = new LRUCache<string, Answer>({ max: 10_000, ttl: PROVIDER_ANSWER_TTL_MS });

  async function providerAnswer(transactionId: string, fresh: boolean): Promise<Answer> {
    const known = fresh ? undefined : answers.get(transactionId);
    if (known) return known;
    const answer = { ...(await deps.review.askProvider(transactionId)), askedAt: new Date().toISOString() };
    answers.set(transactionId, answer);
    return answer;
  }

  async function providerAnswers(transactionIds: readonly string[]): Promise<Map<string, Answer>> {
    const found = new Map<string, Answer>();
    const pending = [...transactionIds];
    await Promise.all(
      Array.from({ length: PROVIDER_ASKS_AT_ONCE }, async () => {
        for (let next = pending.shift(); next !== undefined; next = pending.shift()) found.set(next, await providerAnswer(next, false));
      }),
    );
    return found;
  }

  router.get('/admin/console/api/orders', privateResponse, role('viewer'), async (req: Request, res: Response) => {
    const query = parse(SearchQuery, req.query);
    const cursor = query.cursor ? decodeOrderCursor(query.cursor) : null;
    if (query.cursor && !cursor) throw new ApiError('invalid_request', 'cursor: not one this API gave');
    const rows = await searchOrders(db, { q: query.q ?? null, status: query.status ?? null, cursor, limit: query.limit + 1 });
    const page = rows.slice(0, query.limit);
    res.status(200).json(
      okEnvelope('ok', {
        orders: page.map((row) => ({ ...orderView(row), userId: row.userId })),
        nextCursor: rows.length > query.limit ? encodeOrderCursor(page.at(-1)!) : null,
      }),
    );
  });

  router.get('/admin/console/api/orders/:orderId', privateResponse, role('viewer'), async (req: Request, res: Response) => {
    const order = await deps.review.get(uuidParam(req, 'orderId', 'withdraw order'));
    if (!order) throw new ApiError('not_found', 'no such withdraw order');
    const [context, ledger, pendingOverride] = await Promise.all([
      orderContext(db, order),
      ledgerJournals(deps.databases.ledger, order.transactionId),
      pendingOnSubject(db, 'withdraw.resolve_override', `order:${order.orderId}`),
    ]);
    res.status(200).json(okEnvelope('ok', orderDetailView(order, context, ledger, pendingOverride)));
  });

  router.get('/admin/console/api/orders/:orderId/provider', privateResponse, role('viewer'), async (req: Request, res: Response) => {
    const order = await deps.review.get(uuidParam(req, 'orderId', 'withdraw order'));
    if (!order) throw new ApiError('not_found', 'no such withdraw order');
    res.status(200).json(okEnvelope('ok', await providerAnswer(order.transactionId, true)));
  });

  router.get('/admin/console/api/review', privateResponse, role('viewer'), async (req: Request, res: Response) => {
    const query = parse(ReviewQuery, req.query);
    const [orders, total] = await Promise.all([deps.review.list('manual', query.limit), db.oneFirst(countManual)]);
    const provider = await providerAnswers(orders.map((o) => o.transactionId));
    res.status(200).json(
      okEnvelope('ok', {
        total,
        orders: orders.map((o) => ({ ...evidenceView(o), provider: provider.get(o.transactionId) ?? null })),
      }),
    );
  });

  router.post('/admin/console/api/orders/:orderId/resolve', privateResponse, role('operator'), async (req: Request, res: Response) => {
    const orderId = uuidParam(req, 'orderId', 'withdraw order');
    const body = parse(ResolveBody, readBody(req));
    const operator = operatorOf(req);
    const result = await deps.review.resolve({
      orderId,
      outcome: body.outcome,
      reason: body.reason,
      override: false,
      operator: operator.login,
      requestId: String(req.id),
    });
    if (result.kind === 'not_found') throw new ApiError('not_found', 'no such withdraw order');
    res.locals.transactionId = result.transactionId;
    if (result.kind !== 'not_manual' && result.provider)
      answers.set(result.transactionId, { ...result.provider, askedAt: new Date().toISOString() });
    switch (result.kind) {
      case 'not_manual':
        throw new ApiError('invalid_state', `only manual orders can be resolved; this one is ${result.status}`);
      case 'provider_unavailable':
        throw new ApiError(
          'unavailable',
          `the provider could not be asked (${result.provider.reason}); resolving failed needs its answer`,
          {
            data: { providerStatus: result.provider.status, overridable: true },
          },
        );
      case 'records_disagree':
        throw new ApiError(
          'conflict',
          `the provider has no record of this payout, but ours do not prove it never took it (${result.reasons.join(', ')}): releasing the money could pay it twice. With evidence (the bank statement), request an override (a second operator approves it)`,
          { data: { providerStatus: result.provider.status, reasons: result.reasons, evidence: result.evidence, overridable: true } },
        );
      case 'provider_disagrees':
        throw new ApiError(
          'conflict',
          `the provider reports this payout ${result.provider.status}: releasing the money could pay it twice. With evidence that it came back, request an override (a second operator approves it)`,
          { data: { providerStatus: result.provider.status, overridable: true } },
        );
      default:
        res.status(200).json(
          okEnvelope(result.kind === 'resolved' ? 'resolved' : 'already resolved', {
            withdrawOrderId: orderId,
            transactionId: result.transactionId,
            status: result.status,
            operator: operator.login,
            providerStatus: result.provider?.status ?? null,
          }),
        );
    }
  });

  router.post('/admin/console/api/orders/:orderId/override', privateResponse, role('operator'), async (req: Request, res: Response) => {
    const orderId = uuidParam(req, 'orderId', 'withdraw order');
    const body = parse(OverrideBody, readBody(req));
    const order = await deps.review.get(orderId);
    if (!order) throw new ApiError('not_found', 'no such withdraw order');
    if (order.status !== 'manual') throw new ApiError('invalid_state', `only manual orders can be resolved; this one is ${order.status}`);
    const subject = `order:${orderId}`;
    const pending = await pendingOnSubject(db, 'withdraw.resolve_override', subject);
    if (pending !== null) throw new ApiError('conflict', `request ${pending} for this order is already waiting for a second operator`);
    const operator = operatorOf(req);
    const approval = await deps.approvals.request(
      { name: operator.login, operatorId: operator.operatorId },
      {
        kind: 'withdraw.resolve_override',
        subject,
        payload: { orderId, transactionId: order.transactionId, outcome: 'failed', reason: body.reason },
        reason: body.reason,
      },
      String(req.id),
    );
    res.status(202).json(okEnvelope('waiting for a second operator', approval));
  });

  return router;
}
