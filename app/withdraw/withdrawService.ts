// The synchronous half of a withdrawal: validate, resolve the account, parse the amount exactly,
// then ONE database call that claims the idempotency key, reserves the money, creates the order
// and writes the outbox event. An in-process cache of stored replies spares the database on
// retries; correctness comes from the database alone.
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { CommonQueryMethods } from 'slonik';
import { v7 as uuidv7 } from 'uuid';
import type { AccountDirectory, AccountFacts } from '../balance/accountDirectory.ts';
import { ApiError, errorEnvelope, okEnvelope } from '../http/apiErrors.ts';
import { canonicalDecimal, describeAmountFailure, formatMinor, parseAmount, type Currency } from '../money/money.ts';
import { idempotencyKeyExpired, idempotencyKeyExpiredError } from './idempotencyKeys.ts';
import { createWithdraw, findOrder, findStoredReply, type OrderRow, type StoredResponse } from './withdrawQueries.ts';
import type { WithdrawRequest } from './withdrawSchemas.ts';

export type WithdrawReply = Readonly<{ status: number; body: unknown; replayed: boolean }>;

type CachedReply = Readonly<{ requestHash: string; status: number; body: unknown }>;

export type WithdrawServiceSettings = Readonly<{
  cacheSizeMax: number;
  cacheTtlMs: number;
  /** how long a key's reply is kept (IDEMPOTENCY_KEY_RETENTION_HOURS): an older key with none is refused */
  keyRetentionHours: number;
  /** the clock keys are judged by (default: the real one) */
  nowMs?: () => number;
}>;

export function requestHash(userId: string, request: WithdrawRequest): string {
  const canonical = JSON.stringify([
    userId,
    request.fromAccountId?.toLowerCase() ?? null,
    request.toAccountId,
    canonicalDecimal(request.amount),
    request.currency ?? null,
  ]);
  return createHash('sha256').update(canonical).digest('hex');
}

export function createWithdrawService(deps: { db: CommonQueryMethods; accounts: AccountDirectory; settings: WithdrawServiceSettings }) {
  const { db, accounts } = deps;
  const replies = new LRUCache<string, CachedReply>({
    max: Math.max(1, deps.settings.cacheSizeMax),
    ttl: Math.max(1, deps.settings.cacheTtlMs),
  });
  const cacheEnabled = deps.settings.cacheSizeMax > 0;

  async function requestWithdraw(input: { userId: string; idempotencyKey: string; request: WithdrawRequest }): Promise<WithdrawReply> {
    const { userId, idempotencyKey, request } = input;
    const hash = requestHash(userId, request);
    const cacheKey = `${userId}\u0000${idempotencyKey.toLowerCase()}`;
    const cached = cacheEnabled ? replies.get(cacheKey) : undefined;
    if (cached) {
      if (cached.requestHash !== hash) throw keyReused();
      return { status: cached.status, body: cached.body, replayed: true };
    }
    const { keyRetentionHours } = deps.settings;
    if (idempotencyKeyExpired(idempotencyKey, (deps.settings.nowMs ?? Date.now)(), keyRetentionHours)) {
      // a key past the retention may already have lost its reply: only a reply still stored is
      // trusted; without one, a new withdrawal under this key could be a second one
      const stored = await findStoredReply(db, userId, idempotencyKey);
      if (!stored) throw idempotencyKeyExpiredError(keyRetentionHours);
      if (stored.requestHash !== hash) throw keyReused();
      return { status: stored.status, body: stored.body, replayed: true };
    }

    let account: AccountFacts;
    let amountMinor: bigint;
    try {
      account = await resolveWithdrawAccount(accounts, userId, request);
      amountMinor = parseWithdrawAmount(request.amount, account.currency);
    } catch (error) {
      // What resolves the account can change after a key was used (a second account, a closed
      // one): a key that already has a reply gets that reply, never a different answer.
      const stored = error instanceof ApiError ? await findStoredReply(db, userId, idempotencyKey) : null;
      if (!stored) throw error;
      if (stored.requestHash !== hash) throw keyReused();
      return { status: stored.status, body: stored.body, replayed: true };
    }
    const currency = request.currency ?? account.currency;
    const orderId = uuidv7();
    const transactionId = uuidv7();
    const result = await createWithdraw(db, {
      userId,
      idempotencyKey,
      requestHash: hash,
      accountId: account.accountId,
      toAccountId: request.toAccountId,
      amountMinor,
      currency,
      orderId,
      transactionId,
      responses: possibleResponses(orderId, transactionId, currency),
    });

    switch (result.outcome) {
      case 'in_flight':
        throw new ApiError('request_in_flight', 'a request with this idempotent-key is still in flight');
      case 'key_reused':
        throw keyReused();
      case 'account_not_found':
        throw new ApiError('not_found', 'no such account');
      case 'forbidden':
        throw new ApiError('forbidden', 'the account belongs to another user');
      default: {
        const status = result.responseStatus;
        if (status === null) throw new Error(`withdraw_create returned ${result.outcome} without a response`);
        if (cacheEnabled) replies.set(cacheKey, { requestHash: hash, status, body: result.responseBody });
        return { status, body: result.responseBody, replayed: result.outcome === 'replay' };
      }
    }
  }

  async function getOrder(orderId: string): Promise<OrderRow | null> {
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(orderId)) return null;
    return findOrder(db, orderId);
  }

  return { requestWithdraw, getOrder };
}

export type WithdrawService = ReturnType<typeof createWithdrawService>;

/**
 * The account a withdrawal spends from: fromAccountId (the user's own, else 403; unknown: 404), or
 * the user's one account (in `currency` when given). Throws the ApiError the request gets.
 */
export async function resolveWithdrawAccount(accounts: AccountDirectory, userId: string, request: WithdrawRequest): Promise<AccountFacts> {
  if (request.fromAccountId !== undefined) {
    const facts = await accounts.byId(request.fromAccountId);
    if (!facts) throw new ApiError('not_found', 'no such account');
    if (facts.userId !== userId) throw new ApiError('forbidden', 'the account belongs to another user');
    // a currency that contradicts the account is a business rejection (42203): withdraw_create
    // refuses it, so the reply is stored with the key and replayed like the others
    return facts;
  }
  const own = (await accounts.ofUser(userId)).filter((a) => request.currency === undefined || a.currency === request.currency);
  if (own.length === 0) throw new ApiError('not_found', 'the user has no account to withdraw from');
  if (own.length > 1) throw new ApiError('invalid_request', 'fromAccountId: required when the user has several accounts');
  return own[0]!;
}

/** The amount in minor units of the account's currency, or the 400 naming amount. */
export function parseWithdrawAmount(amount: string, currency: Currency): bigint {
  const parsed = parseAmount(amount, currency);
  if (!parsed.ok) throw new ApiError('invalid_request', `amount: ${describeAmountFailure(parsed.reason)}`);
  return parsed.minor;
}

export function keyReused(): ApiError {
  return new ApiError('idempotency_key_reused', 'idempotent-key was already used with a different request');
}

export type BusinessRejection = 'insufficient_funds' | 'account_unusable' | 'limit_exceeded';

/** The words of each business rejection: one wording for single and bulk withdrawals. */
export function businessRejectionMessage(kind: BusinessRejection, currency: string): string {
  switch (kind) {
    case 'insufficient_funds':
      return 'insufficient available balance';
    case 'account_unusable':
      return `account is not usable (frozen, closed, or not in ${currency})`;
    case 'limit_exceeded':
      return 'a withdraw limit would be exceeded';
  }
}

function possibleResponses(
  orderId: string,
  transactionId: string,
  currency: string,
): Record<'created' | BusinessRejection, StoredResponse> {
  return {
    created: { status: 202, body: okEnvelope('processing', { withdrawOrderId: orderId, transactionId }) },
    insufficient_funds: errorEnvelope('insufficient_funds', businessRejectionMessage('insufficient_funds', currency)),
    account_unusable: errorEnvelope('account_unusable', businessRejectionMessage('account_unusable', currency)),
    limit_exceeded: errorEnvelope('limit_exceeded', businessRejectionMessage('limit_exceeded', currency)),
  };
}

export function orderView(order: OrderRow) {
  const currency = order.currency;
  return {
    withdrawOrderId: order.orderId,
    transactionId: order.transactionId,
    status: order.status,
    amount: formatMinor(order.amountMinor, currency),
    currency: order.currency,
    fromAccountId: order.accountId,
    toAccountId: order.toAccountId,
    createdAt: new Date(order.createdAt).toISOString(),
    updatedAt: new Date(order.updatedAt).toISOString(),
    ...(order.failureReason !== null ? { failureReason: order.failureReason } : {}),
  };
}
