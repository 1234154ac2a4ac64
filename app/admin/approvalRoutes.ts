// The console's dual-control requests: list and read them (every role), make a credit request
// (operator), approve or reject another operator's request (approver), withdraw one's own.
import type { Request, Response, Router } from 'express';
import express from 'express';
import type { DatabasePool } from 'slonik';
import { v7 as uuidv7 } from 'uuid';
import { findAccount } from '../balance/accountQueries.ts';
import { ApiError, okEnvelope } from '../http/apiErrors.ts';
import { readBody } from '../http/jsonBody.ts';
import { decimalInput, z } from '../http/zod.ts';
import { describeAmountFailure, formatMinor, isCurrency, parseAmount } from '../money/money.ts';
import { findApproval, listApprovals } from './approvalQueries.ts';
import { approvalView, type Approvals } from './approvals.ts';
import { bigintId, bigintParam, parse, privateResponse, uuidParam } from './consoleHttp.ts';
import { operatorOf, requireOperator, type SessionSettings } from './consoleSession.ts';

export const ListQuery = z.object({
  state: z.enum(['pending', 'decided']).default('pending'),
  before: bigintId.optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
});
const reason = z.string().trim().min(3).max(500);
export const CreditRequestBody = z.object({ amount: decimalInput, reason });
export const ApproveBody = z.object({ note: z.string().trim().max(500).optional() });
export const RejectBody = z.object({ note: reason });

const DONE_AS: Record<string, readonly string[]> = {
  approve: ['approved', 'failed'],
  reject: ['rejected'],
  cancel: ['cancelled'],
};

function signed(req: Request) {
  const operator = operatorOf(req);
  return { name: operator.login, operatorId: operator.operatorId };
}

export function approvalRoutes(deps: { db: DatabasePool; approvals: Approvals; session: SessionSettings }): Router {
  const router = express.Router();
  const role = (least: 'viewer' | 'operator' | 'approver') => requireOperator(deps.db, deps.session, least);
  router.use('/admin/console/api', privateResponse);

  router.get('/admin/console/api/approvals', role('viewer'), async (req: Request, res: Response) => {
    const query = parse(ListQuery, req.query);
    const rows = await listApprovals(deps.db, { state: query.state, beforeId: query.before ?? null, limit: query.limit + 1 });
    const page = rows.slice(0, query.limit);
    const more = rows.length > query.limit && query.state === 'decided';
    res
      .status(200)
      .json(okEnvelope('ok', { approvals: page.map(approvalView), nextBefore: more ? String(page.at(-1)?.approvalId ?? '') : null }));
  });

  router.get('/admin/console/api/approvals/:approvalId', role('viewer'), async (req: Request, res: Response) => {
    const row = await findApproval(deps.db, bigintParam(req, 'approvalId', 'request'));
    if (!row) throw new ApiError('not_found', 'no such request');
    res.status(200).json(okEnvelope('ok', approvalView(row)));
  });

  router.post('/admin/console/api/accounts/:accountId/credits', role('operator'), async (req: Request, res: Response) => {
    const accountId = uuidParam(req, 'accountId', 'account');
    const body = parse(CreditRequestBody, readBody(req));
    const account = await findAccount(deps.db, accountId);
    if (!account) throw new ApiError('not_found', 'no such account');
    if (!isCurrency(account.currency)) throw new Error(`account ${accountId} has unknown currency ${account.currency}`);
    if (account.status === 'closed') throw new ApiError('account_unusable', 'the account is closed');
    const amount = parseAmount(body.amount, account.currency);
    if (!amount.ok) throw new ApiError('invalid_request', `amount: ${describeAmountFailure(amount.reason)}`);
    const payload = {
      accountId,
      userId: account.userId,
      amount: formatMinor(amount.minor, account.currency),
      amountMinor: amount.minor.toString(),
      currency: account.currency,
      // fixed now: approving runs exactly this credit, and a credit is idempotent by it
      transactionId: uuidv7(),
    };
    const approval = await deps.approvals.request(
      signed(req),
      { kind: 'account.credit', subject: `account:${accountId}`, payload, reason: body.reason },
      String(req.id),
    );
    res.status(202).json(okEnvelope('waiting for a second operator', approval));
  });

  const decide = (verb: 'approve' | 'reject' | 'cancel') => async (req: Request, res: Response) => {
    const approvalId = bigintParam(req, 'approvalId', 'request');
    const who = signed(req);
    const id = String(req.id);
    const decided =
      verb === 'approve'
        ? await deps.approvals.approve(approvalId, who, parse(ApproveBody, readBody(req) ?? {}).note ?? null, id)
        : verb === 'reject'
          ? await deps.approvals.reject(approvalId, who, parse(RejectBody, readBody(req)).note, id)
          : await deps.approvals.cancel(approvalId, who, id);
    const status = decided.approval.status;
    if (!decided.changed && !DONE_AS[verb]!.includes(status)) {
      throw new ApiError(
        'invalid_state',
        `the request is already ${status}${decided.approval.checker ? ` (by ${decided.approval.checker})` : ''}`,
      );
    }
    const msg = decided.changed ? status : `already ${status}`;
    res.status(200).json(okEnvelope(msg, decided.approval));
  };
  router.post('/admin/console/api/approvals/:approvalId/approve', role('approver'), decide('approve'));
  router.post('/admin/console/api/approvals/:approvalId/reject', role('approver'), decide('reject'));
  router.post('/admin/console/api/approvals/:approvalId/cancel', role('operator'), decide('cancel'));

  return router;
}
