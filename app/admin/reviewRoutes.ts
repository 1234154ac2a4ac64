// Operator actions over HTTP: manual review (list orders with their evidence, resolve manual orders,
// through app/admin/manualReview.ts), resolve reconciliation breaks, set withdraw limits. Routes
// parse, call and reply; every action is written to the audit trail in the same transaction as the
// action, with the operator's identity.
import type { Request, Response, Router } from 'express';
import express from 'express';
import { sql, type DatabasePool } from 'slonik';
import { z as zod } from 'zod';
import { ApiError, okEnvelope } from '../http/apiErrors.ts';
import type { Auth } from '../http/auth.ts';
import { readBody } from '../http/jsonBody.ts';
import { decimalInput, describeZodError, z } from '../http/zod.ts';
import { CURRENCIES, describeAmountFailure, formatMinor, isCurrency, parseAmount, type Currency } from '../money/money.ts';
import { WITHDRAW_STATUSES } from '../withdraw/withdrawStateMachine.ts';
import { orderView } from '../withdraw/withdrawService.ts';
import type { AccountDirectory } from '../balance/accountDirectory.ts';
import { recordAudit } from './auditLog.ts';
import type { ManualReview } from './manualReview.ts';
import type { OrderWithEvidence } from './manualReviewQueries.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const LIST_LIMIT_MAX = 500;
const INT8_MAX = 2n ** 63n - 1n;

export const ResolveSchema = z
  .object({
    outcome: z.enum(['success', 'failed']),
    reason: z.string().trim().min(3).max(500),
    override: z
      .boolean()
      .optional()
      .openapi({ description: 'resolve failed although the provider could not confirm that nothing was paid' }),
  })
  .openapi('ResolveWithdrawRequest');
export const ResolveBreakSchema = z.object({ resolution: z.string().trim().min(3).max(500) }).openapi('ResolveBreakRequest');
const limitAmount = decimalInput.nullable().optional();
export const LimitsSchema = z.object({ orderMax: limitAmount, dailyMax: limitAmount }).openapi('WithdrawLimitsRequest');
const ListQuery = z.object({
  status: z.enum(WITHDRAW_STATUSES).default('manual'),
  limit: z.coerce.number().int().min(1).max(LIST_LIMIT_MAX).default(100),
});

function parse<T extends zod.ZodTypeAny>(schema: T, value: unknown): zod.infer<T> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new ApiError('invalid_request', describeZodError(parsed.error));
  return parsed.data;
}

function operatorOf(req: Request): string {
  return req.principal?.kind === 'admin' ? req.principal.operator : 'unknown';
}

function reviewView(order: OrderWithEvidence) {
  return { ...orderView(order), userId: order.userId, evidence: order.evidence };
}

function orderIdParam(req: Request): string {
  const id = String(req.params.withdrawOrderId);
  if (!UUID.test(id)) throw new ApiError('not_found', 'no such withdraw order');
  return id.toLowerCase();
}

function limitMinor(value: string | null | undefined, currency: Currency, field: string): bigint | null | undefined {
  if (value === undefined || value === null) return value;
  const parsed = parseAmount(value, currency);
  if (!parsed.ok) throw new ApiError('invalid_request', `${field}: ${describeAmountFailure(parsed.reason)}`);
  return parsed.minor;
}

const LimitsRow = zod.object({ orderMax: zod.bigint().nullable(), dailyMax: zod.bigint().nullable() });

export function reviewRoutes(deps: { auth: Auth; db: DatabasePool; accounts: AccountDirectory; review: ManualReview }): Router {
  const router = express.Router();
  const admin = deps.auth.require('admin');

  router.get('/admin/withdraws', admin, async (req: Request, res: Response) => {
    const query = parse(ListQuery, req.query);
    const orders = (await deps.review.list(query.status, query.limit)).map(reviewView);
    res.status(200).json(okEnvelope('ok', { orders }));
  });

  router.get('/admin/withdraws/:withdrawOrderId', admin, async (req: Request, res: Response) => {
    const order = await deps.review.get(orderIdParam(req));
    if (!order) throw new ApiError('not_found', 'no such withdraw order');
    res.status(200).json(okEnvelope('ok', reviewView(order)));
  });

  router.post('/admin/withdraws/:withdrawOrderId/resolve', admin, async (req: Request, res: Response) => {
    const orderId = orderIdParam(req);
    const body = parse(ResolveSchema, readBody(req));
    const operator = operatorOf(req);
    const result = await deps.review.resolve({
      orderId,
      outcome: body.outcome,
      reason: body.reason,
      override: body.override ?? false,
      operator,
      requestId: String(req.id),
    });
    if (result.kind === 'not_found') throw new ApiError('not_found', 'no such withdraw order');
    res.locals.transactionId = result.transactionId;
    switch (result.kind) {
      case 'not_manual':
        throw new ApiError('invalid_state', `only manual orders can be resolved; this one is ${result.status}`);
      case 'provider_unavailable':
        throw new ApiError(
          'unavailable',
          `the provider could not be asked (${result.provider.reason}); resolving failed needs its answer, or override with a reason`,
        );
      case 'provider_disagrees':
        throw new ApiError(
          'conflict',
          `the provider reports this payout ${result.provider.status}: releasing the money could pay it twice (override only with evidence that it came back)`,
        );
      case 'records_disagree':
        throw new ApiError(
          'conflict',
          `the provider has no record of this payout, but ours do not prove it never took it (${result.reasons.join(', ')}): ` +
            'releasing the money could pay it twice (override only with evidence, e.g. the bank statement)',
        );
      default:
        res.status(200).json(
          okEnvelope(result.kind === 'resolved' ? 'resolved' : 'already resolved', {
            withdrawOrderId: orderId,
            transactionId: result.transactionId,
            status: result.status,
            operator,
            providerStatus: result.provider?.status ?? null,
          }),
        );
    }
  });

  router.post('/admin/breaks/:breakId/resolve', admin, async (req: Request, res: Response) => {
    const breakId = String(req.params.breakId);
    // an id past bigint's range is no break either (PostgreSQL would refuse to compare it: a 500)
    if (!/^\d{1,19}$/.test(breakId) || BigInt(breakId) > INT8_MAX) throw new ApiError('not_found', 'no such break');
    const body = parse(ResolveBreakSchema, readBody(req));
    const operator = operatorOf(req);
    const resolved = await deps.db.transaction(async (tx) => {
      const row = await tx.maybeOne(sql.type(zod.object({ id: zod.bigint(), category: zod.string(), subject: zod.string() }))`
        update reconciliation_breaks set resolved_at = now(), resolution = ${`${operator}: ${body.resolution}`}
         where id = ${breakId} and resolved_at is null returning id, category, subject`);
      if (row) {
        await recordAudit(tx, {
          operator,
          action: 'break.resolve',
          subject: `break:${breakId}`,
          details: { category: row.category, subject: row.subject, resolution: body.resolution },
          requestId: String(req.id),
        });
      }
      return row;
    });
    if (!resolved) throw new ApiError('not_found', 'no such open break');
    res.status(200).json(okEnvelope('resolved', { breakId, operator }));
  });

  router.put('/admin/accounts/:accountId/limits', admin, async (req: Request, res: Response) => {
    const accountId = String(req.params.accountId);
    const account = UUID.test(accountId) ? await deps.accounts.byId(accountId) : null;
    if (!account) throw new ApiError('not_found', 'no such account');
    const body = parse(LimitsSchema, readBody(req));
    const orderMax = limitMinor(body.orderMax, account.currency, 'orderMax');
    const dailyMax = limitMinor(body.dailyMax, account.currency, 'dailyMax');
    const operator = operatorOf(req);
    // a field left out keeps its value: reply and audit show the limits in force afterwards, not the request
    const inForce = await deps.db.transaction(async (tx) => {
      const row = await tx.one(sql.type(LimitsRow)`
        update accounts set
          withdraw_order_max_minor = ${orderMax === undefined ? sql.fragment`withdraw_order_max_minor` : orderMax},
          withdraw_daily_max_minor = ${dailyMax === undefined ? sql.fragment`withdraw_daily_max_minor` : dailyMax},
          updated_at = now()
         where id = ${account.accountId}
        returning withdraw_order_max_minor as "orderMax", withdraw_daily_max_minor as "dailyMax"`);
      const limits = {
        orderMax: row.orderMax === null ? null : formatMinor(row.orderMax, account.currency),
        dailyMax: row.dailyMax === null ? null : formatMinor(row.dailyMax, account.currency),
      };
      await recordAudit(tx, {
        operator,
        action: 'account.limits',
        subject: `account:${account.accountId}`,
        details: { ...limits, changed: Object.keys(body).filter((k) => body[k as keyof typeof body] !== undefined) },
        requestId: String(req.id),
      });
      return limits;
    });
    res.status(200).json(okEnvelope('ok', { accountId: account.accountId, ...inForce }));
  });

  router.put('/admin/limits/:currency', admin, async (req: Request, res: Response) => {
    const currency = String(req.params.currency);
    if (!isCurrency(currency)) throw new ApiError('invalid_request', `currency: one of ${CURRENCIES.join(', ')}`);
    const body = parse(LimitsSchema, readBody(req));
    const orderMax = limitMinor(body.orderMax, currency, 'orderMax') ?? null;
    const dailyMax = limitMinor(body.dailyMax, currency, 'dailyMax') ?? null;
    const operator = operatorOf(req);
    // PUT replaces the currency's defaults: a field left out is cleared
    const inForce = {
      orderMax: orderMax === null ? null : formatMinor(orderMax, currency),
      dailyMax: dailyMax === null ? null : formatMinor(dailyMax, currency),
    };
    await deps.db.transaction(async (tx) => {
      await tx.query(sql.unsafe`
        insert into withdraw_limit_defaults (currency, order_max_minor, daily_max_minor) values (${currency}, ${orderMax}, ${dailyMax})
        on conflict (currency) do update set order_max_minor = excluded.order_max_minor,
                                             daily_max_minor = excluded.daily_max_minor, updated_at = now()`);
      await recordAudit(tx, {
        operator,
        action: 'limits.default',
        subject: `currency:${currency}`,
        details: inForce,
        requestId: String(req.id),
      });
    });
    res.status(200).json(okEnvelope('ok', { currency, ...inForce }));
  });

  return router;
}
