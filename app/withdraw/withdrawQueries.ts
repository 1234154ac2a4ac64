// SQL of the withdraw context on the Balance DB.
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { WITHDRAW_STATUSES } from './withdrawStateMachine.ts';

const CreateResultRow = z.object({
  outcome: z.enum([
    'created',
    'replay',
    'in_flight',
    'key_reused',
    'account_not_found',
    'forbidden',
    'account_unusable',
    'insufficient_funds',
    'limit_exceeded',
  ]),
  responseStatus: z.number().int().nullable(),
  responseBody: z.unknown(),
});
export type CreateResult = z.infer<typeof CreateResultRow>;

export type StoredResponse = Readonly<{ status: number; body: unknown }>;

export type CreateWithdrawParams = Readonly<{
  userId: string;
  idempotencyKey: string;
  requestHash: string;
  accountId: string;
  toAccountId: string;
  amountMinor: bigint;
  currency: string;
  orderId: string;
  transactionId: string;
  /** the replies this request may get, by outcome; the one chosen is stored with the key */
  responses: Readonly<Record<'created' | 'insufficient_funds' | 'account_unusable' | 'limit_exceeded', StoredResponse>>;
}>;

/** One statement: the whole synchronous half of a withdrawal (sql/balance/0002). */
export async function createWithdraw(db: CommonQueryMethods, p: CreateWithdrawParams): Promise<CreateResult> {
  return db.one(sql.type(CreateResultRow)`
    select outcome, response_status as "responseStatus", response_body as "responseBody"
      from withdraw_create(${p.userId}, ${p.idempotencyKey}, ${p.requestHash}, ${p.accountId}, ${p.toAccountId},
                           ${p.amountMinor}, ${p.currency}, ${p.orderId}, ${p.transactionId},
                           ${sql.json(p.responses as unknown as Parameters<typeof sql.json>[0])})`);
}

const StoredReplyRow = z.object({ requestHash: z.string(), status: z.number(), body: z.unknown() });

/** The reply stored for (user, key), if any. */
export async function findStoredReply(db: CommonQueryMethods, userId: string, idempotencyKey: string) {
  return db.maybeOne(sql.type(StoredReplyRow)`
    select request_hash as "requestHash", response_status as status, response_body as body
      from idempotency_keys where user_id = ${userId} and idempotency_key = ${idempotencyKey}`);
}

export const OrderRow = z.object({
  orderId: z.string(),
  transactionId: z.string(),
  userId: z.string(),
  accountId: z.string(),
  toAccountId: z.string(),
  amountMinor: z.bigint(),
  currency: z.string(),
  status: z.enum(WITHDRAW_STATUSES),
  failureReason: z.string().nullable(),
  createdAt: z.number(),
  updatedAt: z.number(),
});
export type OrderRow = z.infer<typeof OrderRow>;

export const orderColumns = sql.fragment`
  o.id as "orderId", o.transaction_id as "transactionId", o.user_id as "userId", o.account_id as "accountId",
  o.to_account_id as "toAccountId", o.amount_minor as "amountMinor", o.currency, o.status,
  o.failure_reason as "failureReason", o.created_at as "createdAt", o.updated_at as "updatedAt"`;

export async function findOrder(db: CommonQueryMethods, orderId: string): Promise<OrderRow | null> {
  return db.maybeOne(sql.type(OrderRow)`select ${orderColumns} from withdraw_orders o where o.id = ${orderId}`);
}

export async function findOrderByTransactionId(db: CommonQueryMethods, transactionId: string): Promise<OrderRow | null> {
  return db.maybeOne(sql.type(OrderRow)`
    select ${orderColumns} from withdraw_orders o where o.transaction_id = ${transactionId}`);
}

/** The orders of these transactions that are still `init`, in one query. */
export async function findInitOrdersByTransactionIds(
  db: CommonQueryMethods,
  transactionIds: readonly string[],
): Promise<readonly OrderRow[]> {
  if (transactionIds.length === 0) return [];
  return db.any(sql.type(OrderRow)`
    select ${orderColumns} from withdraw_orders o
     where o.transaction_id = any(${sql.array([...transactionIds], 'uuid')}) and o.status = 'init'`);
}
