// SQL of the withdraw context on the Balance DB.
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { CURRENCIES, type Currency } from '../money/money.ts';
import { type Actor, WITHDRAW_STATUSES, type WithdrawStatus } from './withdrawStateMachine.ts';

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
  currency: Currency;
  orderId: string;
  transactionId: string;
  /** the replies this request may get, by outcome; the one chosen is stored with the key */
  responses: Readonly<Record<'created' | 'insufficient_funds' | 'account_unusable' | 'limit_exceeded', StoredResponse>>;
}>;

/** One statement: the whole synchronous half of a withdrawal (sql/balance/functions/withdraw_create.sql). */
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
  currency: z.enum(CURRENCIES),
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

const TransitionRow = z.object({
  outcome: z.enum(['changed', 'unchanged', 'conflict', 'not_found']),
  orderId: z.string().nullable(),
  previousStatus: z.enum(WITHDRAW_STATUSES).nullable(),
  status: z.enum(WITHDRAW_STATUSES).nullable(),
});
export type TransitionResult = z.infer<typeof TransitionRow>;

export type TransitionParams = Readonly<{
  transactionId: string;
  /** the statuses the order must be in: anything else is a `conflict` and changes nothing */
  from: readonly WithdrawStatus[];
  to: WithdrawStatus;
  actor: Actor;
  actorId: string;
  reason: string;
  evidence?: Record<string, unknown> | null;
  failureReason?: string | null;
}>;

/**
 * One transition through withdraw_transition (sql/balance/functions/withdraw_transition.sql):
 * conditional on `from`, with the money moved (success captures, failed releases), the history row
 * and the outbox event, in the caller's transaction. `unchanged`: the order was already in `to`.
 */
export async function transitionWithdraw(db: CommonQueryMethods, p: TransitionParams): Promise<TransitionResult> {
  return db.one(sql.type(TransitionRow)`
    select outcome, order_id as "orderId", previous_status as "previousStatus", status
      from withdraw_transition(${p.transactionId}, ${sql.array([...p.from], 'text')}, ${p.to}, ${p.actor}, ${p.actorId},
                               ${p.reason}, ${p.evidence ? sql.jsonb(p.evidence as Parameters<typeof sql.jsonb>[0]) : null},
                               ${p.failureReason ?? null})`);
}

export type OrderListFilter = Readonly<{
  /** null: every user's (admins only) */
  userId: string | null;
  statuses: readonly WithdrawStatus[] | null;
  /** ISO-8601 instants, inclusive and exclusive */
  createdFrom: string | null;
  createdTo: string | null;
}>;

/** A place in the listing: the (created_at, id) of the last order served, created_at in microseconds. */
export type OrderListPosition = Readonly<{ createdAtUs: bigint; orderId: string }>;

const ListedOrderRow = OrderRow.extend({ createdAtUs: z.bigint() });
export type ListedOrderRow = z.infer<typeof ListedOrderRow>;

/**
 * Orders newest first by (created_at, id), after `after` (keyset, never an offset): one index range
 * scan on withdraw_orders_user_created_idx for a user, withdraw_orders_created_idx for all users.
 */
export async function listOrders(
  db: CommonQueryMethods,
  filter: OrderListFilter,
  after: OrderListPosition | null,
  limit: number,
): Promise<readonly ListedOrderRow[]> {
  const conditions = [sql.fragment`true`];
  if (filter.userId !== null) conditions.push(sql.fragment`o.user_id = ${filter.userId}`);
  if (filter.statuses !== null) conditions.push(sql.fragment`o.status = any(${sql.array([...filter.statuses], 'text')})`);
  if (filter.createdFrom !== null) conditions.push(sql.fragment`o.created_at >= ${filter.createdFrom}::timestamptz`);
  if (filter.createdTo !== null) conditions.push(sql.fragment`o.created_at < ${filter.createdTo}::timestamptz`);
  if (after !== null) {
    conditions.push(sql.fragment`(o.created_at, o.id) < (timestamptz 'epoch' + ${after.createdAtUs}::bigint * interval '1 microsecond',
                                                       ${after.orderId}::uuid)`);
  }
  return db.any(sql.type(ListedOrderRow)`
    select ${orderColumns}, (extract(epoch from o.created_at) * 1000000)::bigint as "createdAtUs"
      from withdraw_orders o
     where ${sql.join(conditions, sql.fragment` and `)}
     order by o.created_at desc, o.id desc
     limit ${limit}`);
}
