// Bulk payouts: POST /withdraw/batch places up to BATCH_ITEMS_MAX withdrawals under one
// idempotency key. Each item is accepted or refused on its own, with the codes POST /withdraw would
// give it; the whole reply is stored with the key (json: its exact text) and replayed byte for byte.
// Items are checked here first (shape, account, amount: what needs no lock), then ONE transaction
// claims the key, places the valid items through withdraw_place_orders (what every withdrawal goes
// through) and stores the reply: orders and reply commit together or not at all.
import { createHash } from 'node:crypto';
import { stringify as losslessStringify } from 'lossless-json';
import { sql, type CommonQueryMethods, type DatabasePool } from 'slonik';
import { v7 as uuidv7 } from 'uuid';
import type { AccountDirectory } from '../balance/accountDirectory.ts';
import { ApiError, okEnvelope } from '../http/apiErrors.ts';
import { describeZodError, z } from '../http/zod.ts';
import { canonicalDecimal } from '../money/money.ts';
import { WithdrawRequestSchema, type WithdrawRequest } from './withdrawSchemas.ts';
import { businessRejectionMessage, keyReused, parseWithdrawAmount, resolveWithdrawAccount } from './withdrawService.ts';
import { WITHDRAW_STATUSES } from './withdrawStateMachine.ts';
import { idempotencyKeyExpired, idempotencyKeyExpiredError } from './idempotencyKeys.ts';

export const BATCH_ITEMS_MAX = 1_000;
const CLIENT_REFERENCE = /^[A-Za-z0-9_.:-]{1,64}$/;

export const BatchRequestSchema = z
  .object({
    items: z
      .array(
        WithdrawRequestSchema.extend({
          clientReference: z
            .string()
            .regex(CLIENT_REFERENCE, '1-64 characters of [A-Za-z0-9_.:-]')
            .openapi({ description: 'your reference of the item; unique in the batch' }),
        }),
      )
      .min(1)
      .max(BATCH_ITEMS_MAX),
  })
  .openapi('WithdrawBatchRequest', {
    description: `1 to ${BATCH_ITEMS_MAX} withdrawals; an item that is not valid is refused on its own (40001), the others go ahead`,
  });

/** The envelope a batch needs before its items are looked at: an object with 1..1000 items, each with a clientReference. */
const BatchShape = z.object({
  items: z
    .array(z.object({ clientReference: z.string().regex(CLIENT_REFERENCE, '1-64 characters of [A-Za-z0-9_.:-]') }).passthrough())
    .min(1, `must hold 1 to ${BATCH_ITEMS_MAX} items`)
    .max(BATCH_ITEMS_MAX, `must hold 1 to ${BATCH_ITEMS_MAX} items`),
});

const batchItemView = z.object({
  clientReference: z.string(),
  code: z.number().int().openapi({ description: '0 accepted, otherwise the code POST /withdraw would give the item' }),
  msg: z.string(),
  withdrawOrderId: z.string().uuid().nullable(),
  transactionId: z.string().uuid().nullable(),
});
export const BatchReplyView = z.object({ batchId: z.string().uuid(), items: z.array(batchItemView) }).openapi('WithdrawBatch');
export const BatchStatusView = z
  .object({
    batchId: z.string().uuid(),
    createdAt: z.string().datetime(),
    items: z.array(batchItemView.extend({ status: z.enum(WITHDRAW_STATUSES).nullable() })),
  })
  .openapi('WithdrawBatchStatus');

export type BatchItemResult = z.infer<typeof batchItemView>;

type PreparedItem = Readonly<{
  index: number;
  clientReference: string;
  /** set when the item is refused before it reaches the database */
  refusal: ApiError | null;
  place: Readonly<{
    accountId: string;
    toAccountId: string;
    amountMinor: string;
    currency: string;
    orderId: string;
    transactionId: string;
  }> | null;
}>;

const PlaceRow = z.object({
  outcome: z.enum(['placed', 'replay', 'in_flight', 'key_reused']),
  itemIndex: z.number().int().nullable(),
  itemOutcome: z.enum(['created', 'account_not_found', 'forbidden', 'account_unusable', 'insufficient_funds', 'limit_exceeded']).nullable(),
  responseStatus: z.number().int().nullable(),
  responseBody: z.string().nullable(),
});

/** The batch's shape, or the 400 naming what is wrong with it (nothing is written). */
export function parseBatchShape(body: unknown): Array<Record<string, unknown> & { clientReference: string }> {
  const parsed = BatchShape.safeParse(body);
  if (!parsed.success) throw new ApiError('invalid_request', describeZodError(parsed.error));
  const seen = new Map<string, number>();
  parsed.data.items.forEach((item, index) => {
    const first = seen.get(item.clientReference);
    if (first !== undefined) throw new ApiError('invalid_request', `items.${index}.clientReference: repeats items.${first}'s`);
    seen.set(item.clientReference, index);
  });
  return parsed.data.items;
}

/** What makes two batches the same request: the user and every item as sent (amounts by value). */
export function batchRequestHash(userId: string, items: ReadonlyArray<Record<string, unknown>>): string {
  const canonical = items.map((item) => {
    const parsed = WithdrawRequestSchema.safeParse(item);
    if (!parsed.success) return ['raw', losslessStringify(item) ?? ''];
    const r = parsed.data;
    return [item.clientReference, r.fromAccountId?.toLowerCase() ?? null, r.toAccountId, canonicalDecimal(r.amount), r.currency ?? null];
  });
  return createHash('sha256')
    .update(JSON.stringify([userId, 'batch', canonical]))
    .digest('hex');
}

async function prepareItem(
  accounts: AccountDirectory,
  userId: string,
  index: number,
  item: Record<string, unknown> & { clientReference: string },
): Promise<PreparedItem> {
  const refused = (refusal: ApiError): PreparedItem => ({ index, clientReference: item.clientReference, refusal, place: null });
  const parsed = WithdrawRequestSchema.safeParse(item);
  if (!parsed.success) return refused(new ApiError('invalid_request', describeZodError(parsed.error)));
  const request: WithdrawRequest = parsed.data;
  try {
    const account = await resolveWithdrawAccount(accounts, userId, request);
    const amountMinor = parseWithdrawAmount(request.amount, account.currency);
    return {
      index,
      clientReference: item.clientReference,
      refusal: null,
      place: {
        accountId: account.accountId,
        toAccountId: request.toAccountId,
        amountMinor: amountMinor.toString(),
        currency: request.currency ?? account.currency,
        orderId: uuidv7(),
        transactionId: uuidv7(),
      },
    };
  } catch (error) {
    if (error instanceof ApiError) return refused(error);
    throw error;
  }
}

const ITEM_REFUSALS = {
  account_not_found: (_currency: string) => new ApiError('not_found', 'no such account'),
  forbidden: (_currency: string) => new ApiError('forbidden', 'the account belongs to another user'),
  insufficient_funds: (currency: string) => new ApiError('insufficient_funds', businessRejectionMessage('insufficient_funds', currency)),
  account_unusable: (currency: string) => new ApiError('account_unusable', businessRejectionMessage('account_unusable', currency)),
  limit_exceeded: (currency: string) => new ApiError('limit_exceeded', businessRejectionMessage('limit_exceeded', currency)),
} as const;

function refusedItem(item: PreparedItem, refusal: ApiError): BatchItemResult {
  return { clientReference: item.clientReference, code: refusal.code, msg: refusal.message, withdrawOrderId: null, transactionId: null };
}

function itemResult(item: PreparedItem, outcome: z.infer<typeof PlaceRow>['itemOutcome'] | undefined): BatchItemResult {
  if (item.refusal) return refusedItem(item, item.refusal);
  if (!item.place || !outcome) throw new Error(`batch item ${item.index}: no outcome from withdraw_batch_place`);
  if (outcome !== 'created') return refusedItem(item, ITEM_REFUSALS[outcome](item.place.currency));
  return {
    clientReference: item.clientReference,
    code: 0,
    msg: 'processing',
    withdrawOrderId: item.place.orderId,
    transactionId: item.place.transactionId,
  };
}

export type BatchReply = Readonly<{ status: number; text: string; replayed: boolean; batchId: string | null }>;

export async function createBatch(
  deps: { db: DatabasePool; accounts: AccountDirectory; keyRetentionHours: number; nowMs?: () => number },
  input: { userId: string; idempotencyKey: string; body: unknown },
): Promise<BatchReply> {
  const items = parseBatchShape(input.body);
  const requestHash = batchRequestHash(input.userId, items);
  if (idempotencyKeyExpired(input.idempotencyKey, (deps.nowMs ?? Date.now)(), deps.keyRetentionHours)) {
    // as for single withdrawals: past the retention only a reply still stored is trusted
    const stored = await findStoredBatchReply(deps.db, input.userId, input.idempotencyKey);
    if (!stored) throw idempotencyKeyExpiredError(deps.keyRetentionHours);
    if (stored.requestHash !== requestHash) throw keyReused();
    return { status: stored.status, text: stored.text, replayed: true, batchId: null };
  }
  const prepared = await Promise.all(items.map((item, index) => prepareItem(deps.accounts, input.userId, index, item)));
  const toPlace = prepared.flatMap((p) => (p.place ? [{ index: p.index, userId: input.userId, ...p.place }] : []));
  const batchId = uuidv7();
  return deps.db.transaction(async (tx) => {
    const rows = await placeBatch(tx, { userId: input.userId, idempotencyKey: input.idempotencyKey, requestHash, items: toPlace });
    const first = rows[0];
    if (first?.outcome === 'in_flight') throw new ApiError('request_in_flight', 'a request with this idempotent-key is still in flight');
    if (first?.outcome === 'key_reused') throw keyReused();
    if (first?.outcome === 'replay') {
      if (first.responseStatus === null || first.responseBody === null) throw new Error('withdraw_batch_place replayed no reply');
      return { status: first.responseStatus, text: first.responseBody, replayed: true, batchId: null };
    }
    const outcomes = new Map(rows.map((row) => [row.itemIndex, row.itemOutcome]));
    const results = prepared.map((item) => itemResult(item, outcomes.get(item.index)));
    const text = JSON.stringify(okEnvelope('processing', { batchId, items: results }));
    const status = 202;
    await storeBatch(tx, {
      userId: input.userId,
      idempotencyKey: input.idempotencyKey,
      requestHash,
      batchId,
      itemsText: JSON.stringify(results),
      acceptedCount: results.filter((r) => r.code === 0).length,
      status,
      text,
    });
    return { status, text, replayed: false, batchId };
  });
}

const StoredReplyText = z.object({ requestHash: z.string(), status: z.number().int(), text: z.string() });

/** The reply stored with (user, key), as its exact text. */
async function findStoredBatchReply(db: CommonQueryMethods, userId: string, idempotencyKey: string) {
  return db.maybeOne(sql.type(StoredReplyText)`
    select request_hash as "requestHash", response_status as status, response_body::text as text
      from idempotency_keys where user_id = ${userId} and idempotency_key = ${idempotencyKey}`);
}

/** withdraw_batch_place (sql/balance/functions/withdraw_batch_place.sql): claim the key, place the items. */
async function placeBatch(
  db: CommonQueryMethods,
  p: { userId: string; idempotencyKey: string; requestHash: string; items: readonly Record<string, unknown>[] },
): Promise<readonly z.infer<typeof PlaceRow>[]> {
  return db.any(sql.type(PlaceRow)`
    select outcome, item_index as "itemIndex", item_outcome as "itemOutcome", response_status as "responseStatus",
           response_body as "responseBody"
      from withdraw_batch_place(${p.userId}, ${p.idempotencyKey}, ${p.requestHash}, ${JSON.stringify(p.items)}::jsonb)`);
}

/** withdraw_batch_store: the reply with the key, and the batch with its items (the texts as given). */
async function storeBatch(
  db: CommonQueryMethods,
  p: {
    userId: string;
    idempotencyKey: string;
    requestHash: string;
    batchId: string;
    itemsText: string;
    acceptedCount: number;
    status: number;
    text: string;
  },
): Promise<void> {
  await db.query(sql.unsafe`
    select withdraw_batch_store(${p.userId}, ${p.idempotencyKey}, ${p.requestHash}, ${p.batchId}, ${p.itemsText}::json,
                                ${p.acceptedCount}, ${p.status}, ${p.text}::json)`);
}

const BatchRow = z.object({ userId: z.string(), createdAt: z.number(), items: z.array(batchItemView) });
const StatusRow = z.object({ id: z.string(), status: z.enum(WITHDRAW_STATUSES) });

/** A batch with each item's order and its current status; null when it does not exist. */
export async function findBatch(db: CommonQueryMethods, batchId: string) {
  const batch = await db.maybeOne(sql.type(BatchRow)`
    select user_id as "userId", created_at as "createdAt", items from withdraw_batches where id = ${batchId}`);
  if (!batch) return null;
  const orderIds = batch.items.flatMap((item) => (item.withdrawOrderId ? [item.withdrawOrderId] : []));
  const statuses =
    orderIds.length === 0
      ? []
      : await db.any(sql.type(StatusRow)`select id, status from withdraw_orders where id = any(${sql.array(orderIds, 'uuid')})`);
  const statusOf = new Map(statuses.map((row) => [row.id, row.status]));
  return {
    userId: batch.userId,
    view: {
      batchId,
      createdAt: new Date(batch.createdAt).toISOString(),
      items: batch.items.map((item) => ({ ...item, status: item.withdrawOrderId ? (statusOf.get(item.withdrawOrderId) ?? null) : null })),
    },
  };
}
