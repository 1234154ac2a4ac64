// Manual review and operator actions: list orders with their evidence, resolve manual orders,
// resolve reconciliation breaks, set withdraw limits. Every action is written to the audit trail
// in the same transaction as the action, with the operator's identity.
import type { Request, Response, Router } from 'express';
import express from 'express';
import { sql, type CommonQueryMethods, type DatabasePool } from 'slonik';
import { z as zod } from 'zod';
import { ApiError, okEnvelope } from '../http/apiErrors.ts';
import type { Auth } from '../http/auth.ts';
import { readBody } from '../http/jsonBody.ts';
import { decimalInput, describeZodError, z } from '../http/zod.ts';
import { CURRENCIES, describeAmountFailure, formatMinor, isCurrency, parseAmount, type Currency } from '../money/money.ts';
import { WITHDRAW_STATUSES } from '../withdraw/withdrawStateMachine.ts';
import { orderView } from '../withdraw/withdrawService.ts';
import { orderColumns, OrderRow } from '../withdraw/withdrawQueries.ts';
import type { AccountDirectory } from '../balance/accountDirectory.ts';
import { recordAudit } from './auditLog.ts';
import type { PspAdapter } from '../gateway/pspAdapter.ts';

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

const EvidenceRow = OrderRow.extend({ evidence: zod.unknown() });

async function ordersWithEvidence(db: CommonQueryMethods, where: ReturnType<typeof sql.fragment>, limit: number) {
  const rows = await db.any(sql.type(EvidenceRow)`
    select ${orderColumns},
           jsonb_build_object(
             'history', (select jsonb_agg(jsonb_build_object('from', h.from_status, 'to', h.to_status, 'actor', h.actor,
                          'actorId', h.actor_id, 'reason', h.reason, 'evidence', h.evidence, 'at', h.created_at) order by h.id)
                           from withdraw_status_history h where h.order_id = o.id),
             'submitAttempts', (select jsonb_agg(jsonb_build_object('result', a.result, 'httpStatus', a.http_status,
                          'detail', a.detail, 'durationMs', a.duration_ms, 'at', a.created_at) order by a.id)
                           from gateway_submit_attempts a where a.transaction_id = o.transaction_id),
             'statusQueries', (select jsonb_agg(jsonb_build_object('result', q.result, 'detail', q.detail, 'at', q.created_at) order by q.id)
                           from gateway_status_queries q where q.transaction_id = o.transaction_id),
             'callbacks', (select jsonb_agg(jsonb_build_object('eventId', i.event_id, 'status', i.status, 'failureCode', i.failure_code,
                          'outcome', i.outcome, 'receivedAt', i.received_at) order by i.id)
                           from gateway_inbox i where i.reference = o.transaction_id::text)
           ) as evidence
      from withdraw_orders o where ${where} order by o.updated_at limit ${limit}`);
  return rows.map((row) => ({ ...orderView(row), userId: row.userId, evidence: row.evidence }));
}

type ProviderVerdict = { status: 'pending' | 'paid' | 'failed' | 'not_found' | 'unknown'; reason: string; detail: Record<string, unknown> };

async function providerVerdict(psp: PspAdapter | null, transactionId: string): Promise<ProviderVerdict> {
  if (!psp) return { status: 'unknown', reason: 'no payout provider configured (PSP_BASE_URL)', detail: {} };
  const lookup = await psp.getPayout(transactionId);
  if (lookup.kind === 'found') return { status: lookup.status, reason: lookup.status, detail: lookup.detail };
  if (lookup.kind === 'not_found') return { status: 'not_found', reason: 'not found', detail: {} };
  return { status: 'unknown', reason: lookup.reason, detail: { reason: lookup.reason } };
}

async function recordStatusQuery(db: CommonQueryMethods, transactionId: string, verdict: ProviderVerdict): Promise<void> {
  await db.query(sql.unsafe`
    insert into gateway_status_queries (transaction_id, result, detail)
    values (${transactionId}, ${verdict.status}, ${sql.jsonb({ ...verdict.detail, askedBy: 'resolve' } as Parameters<typeof sql.jsonb>[0])})`);
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
const TransitionRow = zod.object({ outcome: zod.string(), status: zod.string().nullable(), previousStatus: zod.string().nullable() });

export function reviewRoutes(deps: { auth: Auth; db: DatabasePool; accounts: AccountDirectory; psp: PspAdapter | null }): Router {
  const router = express.Router();
  const admin = deps.auth.require('admin');

  router.get('/admin/withdraws', admin, async (req: Request, res: Response) => {
    const query = parse(ListQuery, req.query);
    const orders = await ordersWithEvidence(deps.db, sql.fragment`o.status = ${query.status}`, query.limit);
    res.status(200).json(okEnvelope('ok', { orders }));
  });

  router.get('/admin/withdraws/:withdrawOrderId', admin, async (req: Request, res: Response) => {
    const [order] = await ordersWithEvidence(deps.db, sql.fragment`o.id = ${orderIdParam(req)}`, 1);
    if (!order) throw new ApiError('not_found', 'no such withdraw order');
    res.status(200).json(okEnvelope('ok', order));
  });

  router.post('/admin/withdraws/:withdrawOrderId/resolve', admin, async (req: Request, res: Response) => {
    const orderId = orderIdParam(req);
    const body = parse(ResolveSchema, readBody(req));
    const operator = operatorOf(req);
    const order = await deps.db.maybeOne(sql.type(zod.object({ transactionId: zod.string(), status: zod.string() }))`
      select transaction_id as "transactionId", status from withdraw_orders where id = ${orderId}`);
    if (!order) throw new ApiError('not_found', 'no such withdraw order');
    // Releasing money the provider may have paid out is the one way to pay twice: ask it first.
    const provider = order.status === 'manual' ? await providerVerdict(deps.psp, order.transactionId) : null;
    if (provider && body.outcome === 'failed' && !body.override && provider.status !== 'not_found' && provider.status !== 'failed') {
      await recordStatusQuery(deps.db, order.transactionId, provider);
      if (provider.status === 'unknown') {
        throw new ApiError(
          'unavailable',
          `the provider could not be asked (${provider.reason}); resolving failed needs its answer, or override with a reason`,
        );
      }
      throw new ApiError(
        'conflict',
        `the provider reports this payout ${provider.status}: releasing the money could pay it twice (override only with evidence that it came back)`,
      );
    }
    const result = await deps.db.transaction(async (tx) => {
      if (provider) await recordStatusQuery(tx, order.transactionId, provider);
      // the same final handling as a callback: capture or release, history, outbox, in this transaction
      const transition = await tx.one(sql.type(TransitionRow)`
        select outcome, status, previous_status as "previousStatus"
          from withdraw_transition(${order.transactionId}, array['manual'], ${body.outcome}, 'operator', ${operator}, ${body.reason},
                                   ${sql.jsonb({ resolvedVia: 'admin api', requestId: String(req.id), providerStatus: provider?.status ?? null, override: body.override ?? false })},
                                   ${body.outcome === 'failed' ? `operator: ${body.reason}` : null})`);
      if (transition.outcome === 'changed') {
        await recordAudit(tx, {
          operator,
          action: 'withdraw.resolve',
          subject: `order:${orderId}`,
          details: {
            outcome: body.outcome,
            reason: body.reason,
            transactionId: order.transactionId,
            providerStatus: provider?.status ?? null,
            override: body.override ?? false,
          },
          requestId: String(req.id),
        });
      }
      // "already resolved" only for an order that left manual with this outcome; one that reached
      // it by itself was never up for resolution (contract: only from manual)
      const wasManual =
        transition.outcome !== 'unchanged' ||
        (await tx.exists(sql.unsafe`
        select 1 from withdraw_status_history where order_id = ${orderId} and from_status = 'manual' and to_status = ${body.outcome}`));
      return { transition: wasManual ? transition : { ...transition, outcome: 'conflict' } };
    });
    res.locals.transactionId = order.transactionId;
    if (result.transition.outcome === 'conflict') {
      throw new ApiError('invalid_state', `only manual orders can be resolved; this one is ${result.transition.status}`);
    }
    res.status(200).json(
      okEnvelope(result.transition.outcome === 'changed' ? 'resolved' : 'already resolved', {
        withdrawOrderId: orderId,
        transactionId: order.transactionId,
        status: result.transition.status,
        operator,
        providerStatus: provider?.status ?? null,
      }),
    );
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
