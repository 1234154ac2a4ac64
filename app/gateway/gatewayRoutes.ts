// The gateway's HTTP surface: POST /withdraw/submit (internal) and POST /withdraw/notify (the
// payout provider's signed callbacks, stored durably before the 200).
import type { Request, Response, Router } from 'express';
import express from 'express';
import type { DatabasePool } from 'slonik';
import { ApiError, okEnvelope } from '../http/apiErrors.ts';
import type { Auth } from '../http/auth.ts';
import { readBody } from '../http/jsonBody.ts';
import { decimalInput, describeZodError, z } from '../http/zod.ts';
import { describeAmountFailure, parseAmount } from '../money/money.ts';
import { enqueueGatewaySubmits } from '../outbox/relays.ts';
import { findOrderByTransactionId } from '../withdraw/withdrawQueries.ts';
import { createInboxWriter } from './inboxWriter.ts';
import { verifyWebhook } from './webhookSignature.ts';

export const SubmitRequestSchema = z
  .object({
    fromAccountId: z.string().uuid(),
    toAccountId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
    amount: decimalInput,
    userId: z.string().min(1).max(128),
    transactionId: z.string().uuid(),
  })
  .openapi('SubmitRequest');

export const CallbackSchema = z
  .object({
    eventId: z
      .string()
      .min(1)
      .max(128)
      .regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces'),
    reference: z.string().min(1).max(128),
    status: z.enum(['paid', 'failed']),
    failureCode: z.string().max(128).optional(),
    occurredAt: z
      .string()
      .datetime({ offset: true })
      // what datetime() lets through but timestamptz refuses (a 500 at the insert): year 0000, offsets beyond ±15:59
      .regex(/^(?!0000-).*(?:Z|[+-](?:0\d|1[0-5])(?::?[0-5]\d)?)$/, 'a year from 0001 and an offset within ±15:59'),
  })
  .openapi('ProviderCallback');

export function gatewayRoutes(deps: { auth: Auth; balance: DatabasePool; webhookSecrets: readonly string[] }): Router {
  const router = express.Router();
  const inbox = createInboxWriter(deps.balance);

  router.post('/withdraw/submit', deps.auth.require('internal'), async (req: Request, res: Response) => {
    const parsed = SubmitRequestSchema.safeParse(readBody(req));
    if (!parsed.success) throw new ApiError('invalid_request', describeZodError(parsed.error));
    const body = parsed.data;
    const order = await findOrderByTransactionId(deps.balance, body.transactionId.toLowerCase());
    if (!order) throw new ApiError('not_found', 'no withdraw order with this transactionId');
    const amount = parseAmount(body.amount, order.currency);
    if (!amount.ok) throw new ApiError('invalid_request', `amount: ${describeAmountFailure(amount.reason)}`);
    const matches =
      order.accountId === body.fromAccountId.toLowerCase() &&
      order.toAccountId === body.toAccountId &&
      order.userId === body.userId &&
      order.amountMinor === amount.minor;
    if (!matches) throw new ApiError('conflict', 'the submission does not match the withdraw order with this transactionId');
    res.locals.transactionId = order.transactionId;
    // idempotent: a job per order at most while queued; the job does nothing unless still init
    if (order.status === 'init')
      await enqueueGatewaySubmits(deps.balance, [{ transactionId: order.transactionId, heldJournalId: null }], 'api');
    res.status(202).json(okEnvelope('accepted', { transactionId: order.transactionId, status: order.status }));
  });

  router.post('/withdraw/notify', async (req: Request, res: Response) => {
    const raw = req.rawBody ?? Buffer.alloc(0);
    const verdict = verifyWebhook(req.get('x-signature'), raw, deps.webhookSecrets, Math.floor(Date.now() / 1000));
    if (!verdict.ok) throw new ApiError('unauthenticated', `callback signature rejected: ${verdict.reason}`);
    const parsed = CallbackSchema.safeParse(readBody(req));
    if (!parsed.success) throw new ApiError('invalid_request', describeZodError(parsed.error));
    const event = parsed.data;
    const stored = await inbox.store({
      eventId: event.eventId,
      reference: event.reference,
      status: event.status,
      failureCode: event.failureCode ?? null,
      occurredAt: event.occurredAt,
      // decoded as jsonBody decoded it: a leading BOM is dropped there, and JSON.parse refuses one
      payload: JSON.parse(new TextDecoder().decode(raw)) as unknown,
      signedAtSec: verdict.timestampSec,
    });
    res.locals.transactionId = event.reference;
    res.status(200).json(okEnvelope(stored ? 'stored' : 'duplicate', { eventId: event.eventId }));
  });

  return router;
}
