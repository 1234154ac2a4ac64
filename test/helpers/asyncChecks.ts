// Checks of the asynchronous path, shared by the async test files: withdrawals placed through
// the real API, and plain-SQL views of an order's history, journals, gateway attempts and inbox.
import { randomUUID } from 'node:crypto';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { signWebhook } from '../../app/gateway/webhookSignature.ts';
import { formatMinor } from '../../app/money/money.ts';
import { call, type JsonReply } from './http.ts';
import { TEST_SECRETS, type TestSystem } from './system.ts';

/** mulberry32: a small seeded generator, so a failing run can be repeated with its seed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let x = state;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomMinor(random: () => number, min: bigint, max: bigint): bigint {
  return min + BigInt(Math.floor(random() * Number(max - min + 1n)));
}

export type PlacedOrder = Readonly<{ orderId: string; transactionId: string; accountId: string; userId: string; amountMinor: bigint }>;

/** Places one withdrawal in USD through POST /withdraw; throws unless it is accepted. */
export async function placeWithdrawal(
  system: TestSystem,
  order: { userId: string; accountId: string; amountMinor: bigint; toAccountId?: string },
): Promise<PlacedOrder> {
  const token = await system.userToken(order.userId);
  const reply: JsonReply = await system.withdraw(token, {
    fromAccountId: order.accountId,
    toAccountId: order.toAccountId ?? `bank-${order.userId}`,
    amount: formatMinor(order.amountMinor, 'USD'),
  });
  if (reply.status !== 202) throw new Error(`withdraw: ${reply.status} ${reply.text}`);
  return {
    orderId: reply.body.data.withdrawOrderId as string,
    transactionId: reply.body.data.transactionId as string,
    accountId: order.accountId,
    userId: order.userId,
    amountMinor: order.amountMinor,
  };
}

/** `count` withdrawals of `amountMinor` each from one fresh account funded with `fundMinor`. */
export async function placeMany(
  system: TestSystem,
  options: { userId: string; count: number; amountMinor: bigint; fundMinor?: bigint },
): Promise<{ accountId: string; orders: PlacedOrder[] }> {
  const fund = options.fundMinor ?? options.amountMinor * BigInt(options.count);
  const accountId = await system.fundedAccount(options.userId, formatMinor(fund, 'USD'));
  const orders: PlacedOrder[] = [];
  for (let i = 0; i < options.count; i += 1) {
    orders.push(await placeWithdrawal(system, { userId: options.userId, accountId, amountMinor: options.amountMinor }));
  }
  return { accountId, orders };
}

const HistoryRow = z.object({
  fromStatus: z.string().nullable(),
  toStatus: z.string(),
  actor: z.string(),
  actorId: z.string().nullable(),
  reason: z.string().nullable(),
  evidence: z.unknown(),
});
export type HistoryRow = z.infer<typeof HistoryRow>;

export async function historyOf(balance: DatabasePool, orderId: string): Promise<readonly HistoryRow[]> {
  return balance.any(sql.type(HistoryRow)`
    select from_status as "fromStatus", to_status as "toStatus", actor, actor_id as "actorId", reason, evidence
      from withdraw_status_history where order_id = ${orderId} order by id`);
}

/** journal kinds of one transaction, in posting order */
export async function journalKinds(ledger: DatabasePool, transactionId: string): Promise<readonly string[]> {
  return ledger.anyFirst(sql.type(z.object({ kind: z.string() }))`
    select kind from journal_transactions where transaction_id = ${transactionId} order by id`);
}

/** journal kinds of many transactions at once: transactionId → kinds in posting order */
export async function journalKindsOf(ledger: DatabasePool, transactionIds: readonly string[]): Promise<Map<string, string[]>> {
  const rows = await ledger.any(sql.type(z.object({ transactionId: z.string(), kind: z.string() }))`
    select transaction_id as "transactionId", kind from journal_transactions
     where transaction_id = any(${sql.array([...transactionIds], 'uuid')}) order by id`);
  const kinds = new Map<string, string[]>(transactionIds.map((id) => [id, []]));
  for (const row of rows) kinds.get(row.transactionId)?.push(row.kind);
  return kinds;
}

const AccountRow = z.object({ balance: z.bigint(), available: z.bigint(), reserved: z.bigint() });
export type AccountMinor = z.infer<typeof AccountRow>;

export async function accountMinor(balance: DatabasePool, accountId: string): Promise<AccountMinor> {
  return balance.one(sql.type(AccountRow)`
    select balance_minor as balance, available_minor as available, reserved_minor as reserved from accounts where id = ${accountId}`);
}

const OrderRow = z.object({ orderId: z.string(), status: z.string(), failureReason: z.string().nullable() });

export async function ordersById(balance: DatabasePool, orderIds: readonly string[]): Promise<Map<string, z.infer<typeof OrderRow>>> {
  const rows = await balance.any(sql.type(OrderRow)`
    select id as "orderId", status, failure_reason as "failureReason" from withdraw_orders
     where id = any(${sql.array([...orderIds], 'uuid')})`);
  return new Map(rows.map((row) => [row.orderId, row]));
}

const AttemptRow = z.object({
  transactionId: z.string(),
  result: z.string(),
  httpStatus: z.number().nullable(),
  detail: z.record(z.unknown()),
});
export type AttemptRow = z.infer<typeof AttemptRow>;

export async function submitAttempts(balance: DatabasePool, transactionIds: readonly string[]): Promise<readonly AttemptRow[]> {
  return balance.any(sql.type(AttemptRow)`
    select transaction_id as "transactionId", result, http_status as "httpStatus", detail from gateway_submit_attempts
     where transaction_id = any(${sql.array([...transactionIds], 'uuid')}) order by id`);
}

export async function countRows(
  db: DatabasePool,
  table: 'gateway_inbox' | 'outbox' | 'reconciliation_breaks' | 'entries' | 'journal_transactions' | 'withdraw_status_history',
): Promise<number> {
  return db.oneFirst(sql.type(z.object({ n: z.number() }))`select count(*)::int as n from ${sql.identifier([table])}`);
}

/**
 * Polls `check` until it returns true; throws, naming `what` it waited for (a function: read at
 * the deadline), when the (generous) deadline passes first.
 */
export async function eventually(
  what: string | (() => string),
  check: () => Promise<boolean>,
  timeoutMs = 20_000,
  intervalMs = 50,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`waited ${timeoutMs} ms for ${typeof what === 'string' ? what : what()}; it did not happen`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

export type CallbackBody = { eventId: string; reference: string; status: 'paid' | 'failed'; failureCode?: string; occurredAt: string };

/** Sends a provider callback signed with the test secret (or the given one) at `timestampSec` (default now). */
export async function sendCallback(
  baseUrl: string,
  body: Partial<CallbackBody> | string,
  options: { secret?: string; timestampSec?: number; header?: string | null } = {},
): Promise<JsonReply> {
  const rawBody =
    typeof body === 'string'
      ? body
      : JSON.stringify({ eventId: randomUUID(), status: 'paid', occurredAt: new Date().toISOString(), ...body });
  const signature =
    options.header === undefined
      ? signWebhook(options.secret ?? TEST_SECRETS.PSP_WEBHOOK_SECRET, rawBody, options.timestampSec ?? Math.floor(Date.now() / 1000))
      : options.header;
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (signature !== null) headers['x-signature'] = signature;
  return call(baseUrl, 'POST', '/withdraw/notify', { rawBody, headers });
}
