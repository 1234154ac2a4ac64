// POST /withdraw and GET /withdraw/{withdrawOrderId} (docs/api.md).
import type { Request, RequestHandler, Response, Router } from 'express';
import express from 'express';
import type { Auth } from '../http/auth.ts';
import { readBody } from '../http/jsonBody.ts';
import { ApiError, okEnvelope } from '../http/apiErrors.ts';
import { describeZodError, uuidAny, uuidV7 } from '../http/zod.ts';
import type { WithdrawService } from './withdrawService.ts';
import { orderView } from './withdrawService.ts';
import { IDEMPOTENCY_HEADERS, ListWithdrawsQuery, WaitQuerySchema, WithdrawRequestSchema } from './withdrawSchemas.ts';
import { listOrders, type OrderListFilter, type OrderRow } from './withdrawQueries.ts';
import { decodeCursor, encodeCursor } from '../http/cursor.ts';
import type { DatabasePool } from 'slonik';
import type { AccountDirectory } from '../balance/accountDirectory.ts';
import { createBatch, findBatch } from './withdrawBatch.ts';

export type OrderWaiter = (orderId: string, stillSame: () => Promise<boolean>, waitMs: number) => Promise<boolean>;

export function idempotencyKeyOf(req: Request): string {
  const values = IDEMPOTENCY_HEADERS.map((name) => req.get(name)).filter((v): v is string => v !== undefined);
  const [key] = values;
  if (key === undefined) throw new ApiError('invalid_idempotency_key', 'idempotent-key header is required (a UUIDv7)');
  if (values.some((v) => v.toLowerCase() !== key.toLowerCase()))
    throw new ApiError('invalid_idempotency_key', 'idempotent-key and Idempotency-Key differ');
  if (!uuidV7.safeParse(key).success) throw new ApiError('invalid_idempotency_key', 'idempotent-key must be a UUIDv7');
  return key.toLowerCase();
}

export function withdrawRoutes(deps: {
  auth: Auth;
  withdraws: WithdrawService;
  waitForChange?: OrderWaiter;
  longPollWaitMsMax: number;
  rateLimit?: RequestHandler;
  db: DatabasePool;
  accounts: AccountDirectory;
  keyRetentionHours: number;
}): Router {
  const router = express.Router();
  const limit: RequestHandler = deps.rateLimit ?? ((_req, _res, next) => next());

  router.post('/withdraw', deps.auth.require('user'), limit, async (req: Request, res: Response) => {
    const principal = req.principal;
    if (principal?.kind !== 'user') throw new ApiError('forbidden', 'a user token is required');
    const idempotencyKey = idempotencyKeyOf(req);
    const parsed = WithdrawRequestSchema.safeParse(readBody(req));
    if (!parsed.success) throw new ApiError('invalid_request', describeZodError(parsed.error));
    const reply = await deps.withdraws.requestWithdraw({ userId: principal.userId, idempotencyKey, request: parsed.data });
    const body = reply.body as { data?: { withdrawOrderId?: string; transactionId?: string } } | null;
    if (body?.data?.transactionId) res.locals.transactionId = body.data.transactionId;
    if (reply.replayed) res.setHeader('Idempotent-Replayed', 'true');
    res.status(reply.status).json(reply.body);
  });

  router.post('/withdraw/batch', deps.auth.require('user'), limit, async (req: Request, res: Response) => {
    const principal = req.principal;
    if (principal?.kind !== 'user') throw new ApiError('forbidden', 'a user token is required');
    const idempotencyKey = idempotencyKeyOf(req);
    const reply = await createBatch(
      { db: deps.db, accounts: deps.accounts, keyRetentionHours: deps.keyRetentionHours },
      { userId: principal.userId, idempotencyKey, body: readBody(req) },
    );
    if (reply.replayed) res.setHeader('Idempotent-Replayed', 'true');
    // the stored text itself: the first reply and every replay are the same bytes
    res.status(reply.status).type('application/json').send(reply.text);
  });

  router.get('/withdraw/batch/:batchId', deps.auth.require('user', 'admin'), async (req: Request, res: Response) => {
    const batchId = String(req.params.batchId);
    const batch = uuidAny.safeParse(batchId).success ? await findBatch(deps.db, batchId.toLowerCase()) : null;
    const principal = req.principal;
    // another user's batch is indistinguishable from a missing one, as for orders
    if (!batch || (principal?.kind === 'user' && batch.userId !== principal.userId)) throw new ApiError('not_found', 'no such batch');
    res.status(200).json(okEnvelope('ok', batch.view));
  });

  router.get('/withdraws', deps.auth.require('user', 'admin'), async (req: Request, res: Response) => {
    const query = ListWithdrawsQuery.safeParse(req.query);
    if (!query.success) throw new ApiError('invalid_request', describeZodError(query.error));
    const q = query.data;
    const principal = req.principal;
    if (principal?.kind === 'user' && q.userId !== undefined)
      throw new ApiError('invalid_request', 'userId: only an admin may filter by user');
    const filter: OrderListFilter = {
      userId: principal?.kind === 'user' ? principal.userId : (q.userId ?? null),
      statuses: q.status ?? null,
      createdFrom: q.createdFrom ?? null,
      createdTo: q.createdTo ?? null,
    };
    const after = q.cursor === undefined ? null : orderPosition(decodeCursor('withdraws', filter, q.cursor));
    const rows = await listOrders(deps.db, filter, after, q.limit + 1);
    const page = rows.slice(0, q.limit);
    const last = page.at(-1);
    const nextCursor =
      rows.length > q.limit && last ? encodeCursor('withdraws', filter, [last.createdAtUs.toString(), last.orderId]) : null;
    const admin = principal?.kind === 'admin';
    const items = page.map((row) => (admin ? { ...orderView(row), userId: row.userId } : orderView(row)));
    res.status(200).json(okEnvelope('ok', { items, nextCursor }));
  });

  router.get('/withdraw/:withdrawOrderId', deps.auth.require('user', 'admin'), async (req: Request, res: Response) => {
    const orderId = String(req.params.withdrawOrderId);
    const query = WaitQuerySchema.safeParse(req.query);
    if (!query.success) throw new ApiError('invalid_request', describeZodError(query.error));
    const visible = async (): Promise<OrderRow> => {
      const order = await deps.withdraws.getOrder(orderId);
      const principal = req.principal;
      const allowed = principal?.kind === 'admin' || (principal?.kind === 'user' && order?.userId === principal.userId);
      // another user's order is indistinguishable from a missing one
      if (!order || !allowed) throw new ApiError('not_found', 'no such withdraw order');
      return order;
    };
    let order = await visible();
    const waitMs = Math.min(query.data.waitMs ?? 0, deps.longPollWaitMsMax);
    const unchangedFrom = query.data.status ?? order.status;
    const deadline = Date.now() + waitMs;
    const stillSame = async () => (await deps.withdraws.getOrder(orderId))?.status === unchangedFrom;
    while (deps.waitForChange && order.status === unchangedFrom && Date.now() < deadline) {
      const waited = await deps.waitForChange(order.orderId, stillSame, deadline - Date.now());
      order = await visible();
      if (!waited) break;
    }
    res.locals.transactionId = order.transactionId;
    res.status(200).json(okEnvelope('ok', orderView(order)));
  });

  return router;
}

function orderPosition(keys: readonly string[]): { createdAtUs: bigint; orderId: string } {
  const [createdAtUs, orderId] = keys;
  if (keys.length !== 2 || !/^\d{1,17}$/.test(createdAtUs ?? '') || !uuidAny.safeParse(orderId).success)
    throw new ApiError('invalid_request', 'cursor: is not a cursor');
  return { createdAtUs: BigInt(createdAtUs!), orderId: orderId! };
}
