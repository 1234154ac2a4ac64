// The client API of wallets: GET /accounts (balance, available, reserved) and
// GET /accounts/{accountId}/statement (the ledger's entries of a period with opening and closing
// balances, each entry with its running balance). A user sees their own accounts; another user's
// account is 403 (as POST /withdraw answers for it), a missing one 404; an admin sees every account.
import type { Request, Response, Router } from 'express';
import express from 'express';
import type { DatabasePool } from 'slonik';
import { ApiError, okEnvelope } from '../http/apiErrors.ts';
import type { Auth } from '../http/auth.ts';
import { decodeCursor, encodeCursor } from '../http/cursor.ts';
import { describeZodError, z } from '../http/zod.ts';
import { readStatement, type StatementEntryRow } from '../ledger/statementQueries.ts';
import { formatMinor, type Currency } from '../money/money.ts';
import { limitParam } from '../withdraw/withdrawSchemas.ts';
import type { AccountDirectory } from './accountDirectory.ts';
import { listAccounts, type AccountRow } from './accountQueries.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const ACCOUNTS_LIMIT_MAX = 200;
export const STATEMENT_LIMIT_MAX = 500;

const instant = z
  .string()
  .datetime({ offset: true, message: 'must be an ISO-8601 date-time with a time zone (2026-01-31T00:00:00Z)' })
  .openapi({ format: 'date-time' });

export const ListAccountsQuery = z
  .object({
    userId: z
      .string()
      .regex(/^[A-Za-z0-9_.:@-]{1,128}$/, '1-128 characters of [A-Za-z0-9_.:@-]')
      .optional()
      .openapi({ description: 'admins only: one user’s accounts' }),
    limit: limitParam(ACCOUNTS_LIMIT_MAX, 100),
    cursor: z.string().max(512).optional(),
  })
  .strict();

export const StatementQuery = z
  .object({
    from: instant.optional().openapi({ description: 'entries posted at or after this instant (default: the first)' }),
    to: instant.optional().openapi({ description: 'entries posted before this instant (default: now, fixed by the first page)' }),
    limit: limitParam(STATEMENT_LIMIT_MAX, 100),
    cursor: z.string().max(512).optional(),
  })
  .strict()
  .refine((q) => q.from === undefined || q.to === undefined || Date.parse(q.from) <= Date.parse(q.to), {
    message: 'must not be after to',
    path: ['from'],
  });

export const AccountListView = z
  .object({
    items: z.array(
      z.object({
        accountId: z.string().uuid(),
        currency: z.string(),
        status: z.enum(['active', 'frozen', 'closed']),
        balance: z.string().openapi({ example: '100.00', description: 'available + reserved' }),
        available: z.string().openapi({ example: '80.00', description: 'what can be withdrawn now' }),
        reserved: z.string().openapi({ example: '20.00', description: 'held by withdrawals not final yet' }),
        userId: z.string().optional().openapi({ description: 'in an admin’s listing' }),
      }),
    ),
    nextCursor: z.string().nullable(),
  })
  .openapi('AccountList');

export const STATEMENT_KINDS = { deposit: 'deposit', hold: 'withdrawal', reverse: 'withdrawal_returned', settle: 'settlement' } as const;

export const StatementView = z
  .object({
    accountId: z.string().uuid(),
    currency: z.string(),
    from: z.string().datetime().nullable(),
    to: z.string().datetime(),
    openingBalance: z.string().openapi({ description: 'the balance before the first entry of the period (user’s view)' }),
    closingBalance: z.string().openapi({ description: 'openingBalance plus every amount of the period' }),
    items: z.array(
      z.object({
        entryId: z.string(),
        transactionId: z.string().uuid(),
        kind: z.enum(['deposit', 'withdrawal', 'withdrawal_returned', 'settlement']),
        amount: z.string().openapi({ description: 'signed: a credit to the user is positive', example: '-25.00' }),
        balanceAfter: z.string().openapi({ description: 'the running balance after this entry' }),
        at: z.string().datetime(),
      }),
    ),
    nextCursor: z.string().nullable(),
  })
  .openapi('Statement');

function parseQuery<T extends z.ZodTypeAny>(schema: T, query: unknown): z.infer<T> {
  const parsed = schema.safeParse(query);
  if (!parsed.success) throw new ApiError('invalid_request', describeZodError(parsed.error));
  return parsed.data;
}

function balancesView(row: AccountRow, admin: boolean) {
  const view = {
    accountId: row.accountId,
    currency: row.currency,
    status: row.status,
    balance: formatMinor(row.balanceMinor, row.currency),
    available: formatMinor(row.availableMinor, row.currency),
    reserved: formatMinor(row.reservedMinor, row.currency),
  };
  return admin ? { ...view, userId: row.userId } : view;
}

/** The ledger's signs turned into the user's view: a credit to the user (a ledger credit to the wallet) is positive. */
function entryView(entry: StatementEntryRow, currency: Currency) {
  return {
    entryId: entry.entryId.toString(),
    transactionId: entry.transactionId,
    kind: STATEMENT_KINDS[entry.kind],
    amount: formatMinor(-entry.amountMinor, currency),
    balanceAfter: formatMinor(-entry.balanceAfterMinor, currency),
    at: new Date(entry.at).toISOString(),
  };
}

export function clientAccountRoutes(deps: { auth: Auth; balance: DatabasePool; ledger: DatabasePool; accounts: AccountDirectory }): Router {
  const router = express.Router();
  const userOrAdmin = deps.auth.require('user', 'admin');

  router.get('/accounts', userOrAdmin, async (req: Request, res: Response) => {
    const q = parseQuery(ListAccountsQuery, req.query);
    const principal = req.principal;
    if (principal?.kind === 'user' && q.userId !== undefined)
      throw new ApiError('invalid_request', 'userId: only an admin may filter by user');
    const filter = { userId: principal?.kind === 'user' ? principal.userId : (q.userId ?? null) };
    let afterId: string | null = null;
    if (q.cursor !== undefined) {
      const [id] = decodeCursor('accounts', filter, q.cursor);
      if (!id || !UUID.test(id)) throw new ApiError('invalid_request', 'cursor: is not a cursor');
      afterId = id;
    }
    const rows = await listAccounts(deps.balance, filter, afterId, q.limit + 1);
    const page = rows.slice(0, q.limit);
    const last = page.at(-1);
    const nextCursor = rows.length > q.limit && last ? encodeCursor('accounts', filter, [last.accountId]) : null;
    res.status(200).json(okEnvelope('ok', { items: page.map((row) => balancesView(row, principal?.kind === 'admin')), nextCursor }));
  });

  router.get('/accounts/:accountId/statement', userOrAdmin, async (req: Request, res: Response) => {
    const accountId = String(req.params.accountId).toLowerCase();
    const account = UUID.test(accountId) ? await deps.accounts.byId(accountId) : null;
    if (!account) throw new ApiError('not_found', 'no such account');
    const principal = req.principal;
    if (principal?.kind === 'user' && account.userId !== principal.userId)
      throw new ApiError('forbidden', 'the account belongs to another user');
    const q = parseQuery(StatementQuery, req.query);
    const filter = { accountId, from: q.from ?? null, to: q.to ?? null };
    // the first page fixes `to` (now, when not given) so that every page reads the same period
    let to = q.to ?? new Date().toISOString();
    let afterSequence = 0n;
    if (q.cursor !== undefined) {
      const [sequence, fixedTo] = decodeCursor('statement', filter, q.cursor);
      if (!sequence || !/^\d{1,18}$/.test(sequence) || !fixedTo || !instant.safeParse(fixedTo).success)
        throw new ApiError('invalid_request', 'cursor: is not a cursor');
      afterSequence = BigInt(sequence);
      to = fixedTo;
    }
    const statement = await readStatement(deps.ledger, { accountId, from: filter.from, to, afterSequence, limit: q.limit + 1 });
    const page = statement.entries.slice(0, q.limit);
    const last = page.at(-1);
    const nextCursor =
      statement.entries.length > q.limit && last ? encodeCursor('statement', filter, [last.accountSequence.toString(), to]) : null;
    const currency = statement.currency ?? account.currency;
    res.status(200).json(
      okEnvelope('ok', {
        accountId,
        currency,
        from: filter.from,
        to,
        openingBalance: formatMinor(-statement.openingMinor, currency),
        closingBalance: formatMinor(-statement.closingMinor, currency),
        items: page.map((entry) => entryView(entry, currency)),
        nextCursor,
      }),
    );
  });

  return router;
}
