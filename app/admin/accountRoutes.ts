// Admin account API: create, credit (idempotent by transactionId), read, freeze/close.
import type { Request, Response, Router } from 'express';
import express from 'express';
import type { DatabasePool } from 'slonik';
import type { AccountDirectory } from '../balance/accountDirectory.ts';
import { creditAccount, findAccount, insertAccount, setAccountStatus, type AccountBalances } from '../balance/accountQueries.ts';
import type { Auth } from '../http/auth.ts';
import { readBody } from '../http/jsonBody.ts';
import { recordAudit } from './auditLog.ts';
import { ApiError, okEnvelope } from '../http/apiErrors.ts';
import { decimalInput, describeZodError, z } from '../http/zod.ts';
import { CURRENCIES, describeAmountFailure, formatMinor, parseAmount } from '../money/money.ts';

const USER_ID = /^[A-Za-z0-9_.:@-]{1,128}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const CreateAccountSchema = z
  .object({
    userId: z.string().regex(USER_ID, '1-128 characters of [A-Za-z0-9_.:@-]'),
    currency: z.enum(CURRENCIES),
  })
  .openapi('CreateAccountRequest');

export const CreditSchema = z.object({ amount: decimalInput, transactionId: z.string().uuid() }).openapi('CreditRequest');

export const AccountStatusSchema = z.object({ status: z.enum(['active', 'frozen', 'closed']) }).openapi('AccountStatusRequest');

export function accountView(row: AccountBalances) {
  const currency = row.currency;
  return {
    accountId: row.accountId,
    userId: row.userId,
    currency,
    status: row.status,
    balance: formatMinor(row.balanceMinor, currency),
    available: formatMinor(row.availableMinor, currency),
    reserved: formatMinor(row.reservedMinor, currency),
  };
}

const CREDIT_REJECTIONS = {
  account_not_found: () => new ApiError('not_found', 'no such account'),
  mismatch: () => new ApiError('idempotency_key_reused', 'transactionId was already used with a different credit'),
  account_unusable: () => new ApiError('account_unusable', 'the account is closed'),
} as const;

function parseBody<T extends z.ZodTypeAny>(schema: T, body: unknown): z.infer<T> {
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw new ApiError('invalid_request', describeZodError(parsed.error));
  return parsed.data;
}

function accountIdParam(req: Request): string {
  const id = String(req.params.accountId);
  if (!UUID.test(id)) throw new ApiError('not_found', 'no such account');
  return id.toLowerCase();
}

export function accountRoutes(deps: { auth: Auth; db: DatabasePool; accounts: AccountDirectory }): Router {
  const router = express.Router();
  const admin = deps.auth.require('admin');

  router.post('/admin/accounts', admin, async (req: Request, res: Response) => {
    const body = parseBody(CreateAccountSchema, readBody(req));
    const row = await insertAccount(deps.db, body);
    deps.accounts.forgetUser(row.userId);
    res.status(201).json(okEnvelope('created', accountView(row)));
  });

  router.get('/admin/accounts/:accountId', admin, async (req: Request, res: Response) => {
    const row = await findAccount(deps.db, accountIdParam(req));
    if (!row) throw new ApiError('not_found', 'no such account');
    res.status(200).json(okEnvelope('ok', accountView(row)));
  });

  router.post('/admin/accounts/:accountId/credits', admin, async (req: Request, res: Response) => {
    const accountId = accountIdParam(req);
    const body = parseBody(CreditSchema, readBody(req));
    const account = await deps.accounts.byId(accountId);
    if (!account) throw new ApiError('not_found', 'no such account');
    const amount = parseAmount(body.amount, account.currency);
    if (!amount.ok) throw new ApiError('invalid_request', `amount: ${describeAmountFailure(amount.reason)}`);
    const operator = req.principal?.kind === 'admin' ? req.principal.operator : 'admin';
    const result = await deps.db.transaction(async (tx) => {
      const credited = await creditAccount(tx, {
        transactionId: body.transactionId.toLowerCase(),
        accountId,
        amountMinor: amount.minor,
        actor: `operator:${operator}`,
      });
      if (credited.outcome === 'credited') {
        await recordAudit(tx, {
          operator,
          action: 'account.credit',
          subject: `account:${accountId}`,
          details: { transactionId: body.transactionId.toLowerCase(), amount: body.amount },
          requestId: String(req.id),
        });
      }
      return credited;
    });
    if (result.outcome !== 'credited' && result.outcome !== 'replay') throw CREDIT_REJECTIONS[result.outcome]();
    if (result.outcome === 'replay') res.setHeader('Idempotent-Replayed', 'true');
    res.locals.transactionId = body.transactionId;
    const view = accountView(result.account);
    res.status(200).json(okEnvelope('credited', { ...view, transactionId: body.transactionId.toLowerCase() }));
  });

  router.post('/admin/accounts/:accountId/status', admin, async (req: Request, res: Response) => {
    const body = parseBody(AccountStatusSchema, readBody(req));
    const operator = req.principal?.kind === 'admin' ? req.principal.operator : 'admin';
    const row = await deps.db.transaction(async (tx) => {
      const updated = await setAccountStatus(tx, accountIdParam(req), body.status);
      if (updated) {
        await recordAudit(tx, {
          operator,
          action: 'account.status',
          subject: `account:${updated.accountId}`,
          details: { status: body.status },
          requestId: String(req.id),
        });
      }
      return updated;
    });
    if (!row) throw new ApiError('not_found', 'no such account');
    deps.accounts.forgetUser(row.userId);
    res.status(200).json(okEnvelope('ok', accountView(row)));
  });

  return router;
}
