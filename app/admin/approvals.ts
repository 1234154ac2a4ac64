// Dual control (maker-checker) for the console's riskiest actions: crediting an account, resolving
// an order failed against the provider's answer (the override), and retrying many jobs at once.
// The maker's request is stored; a second operator (approver or admin, never the maker) approves or
// rejects it. On approval the action runs in the approval's transaction, next to its audit rows:
// either all of it happens or none. Approving twice does nothing more (the decision is conditional
// on the request still pending), and each action is idempotent besides (a credit by its
// transactionId, a resolution by the order's state, a retry by the jobs' state).
// The admin tokens are trusted machine identities and are not subject to it (docs/console.md).
import type { CommonQueryMethods, DatabasePool } from 'slonik';
import { creditAccount } from '../balance/accountQueries.ts';
import { transitionWithdraw } from '../withdraw/withdrawQueries.ts';
import { ApiError } from '../http/apiErrors.ts';
import { recordAudit } from './auditLog.ts';
import { retryJobs } from './dashboardQueries.ts';
import type { ManualReview, ProviderVerdict } from './manualReview.ts';
import { leftManualAs, recordResolutionQuery } from './manualReviewQueries.ts';
import {
  type ApprovalKind,
  type ApprovalRow,
  decideApproval,
  expireApproval,
  findApproval,
  insertApproval,
  setApprovalOutcome,
} from './approvalQueries.ts';
import type { Actor } from './consoleHttp.ts';

export type CreditPayload = { accountId: string; amount: string; amountMinor: string; currency: string; transactionId: string };
export type OverridePayload = { orderId: string; transactionId: string; outcome: 'failed'; reason: string };
export type RetryPayload = { jobIds: string[] };
type Signed = Actor & { operatorId: string };

type ActionResult = { status: 'approved' | 'failed'; outcome: string; result: Record<string, unknown> };

export function approvalView(row: ApprovalRow) {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return {
    approvalId: row.approvalId.toString(),
    kind: row.kind,
    subject: row.subject,
    payload: row.payload,
    reason: row.reason,
    status: row.expired ? 'expired' : row.status,
    maker: row.maker,
    checker: row.checker,
    createdAt: iso(row.createdAt),
    expiresAt: iso(row.expiresAt),
    decidedAt: iso(row.decidedAt),
    decisionNote: row.decisionNote,
    outcome: row.outcome,
    result: row.result ?? null,
  };
}

async function runCredit(tx: CommonQueryMethods, row: ApprovalRow, checker: Signed): Promise<ActionResult> {
  const p = row.payload as CreditPayload;
  const credited = await creditAccount(tx, {
    transactionId: p.transactionId,
    accountId: p.accountId,
    amountMinor: BigInt(p.amountMinor),
    actor: `operator:${row.maker}+${checker.name}`,
  });
  if (credited.outcome === 'credited') {
    await recordAudit(tx, {
      operator: checker.name,
      operatorId: checker.operatorId,
      action: 'account.credit',
      subject: `account:${p.accountId}`,
      details: {
        transactionId: p.transactionId,
        amount: p.amount,
        currency: p.currency,
        maker: row.maker,
        approvalId: String(row.approvalId),
      },
      requestId: null,
    });
  }
  const done = credited.outcome === 'credited' || credited.outcome === 'replay';
  return { status: done ? 'approved' : 'failed', outcome: credited.outcome, result: { transactionId: p.transactionId } };
}

async function runOverride(tx: CommonQueryMethods, row: ApprovalRow, checker: Signed, provider: ProviderVerdict): Promise<ActionResult> {
  const p = row.payload as OverridePayload;
  await recordResolutionQuery(tx, p.transactionId, provider.status, provider.detail);
  // the same transition a resolution makes (manualReview.ts), with both signatures as evidence
  const transition = await transitionWithdraw(tx, {
    transactionId: p.transactionId,
    from: ['manual'],
    to: 'failed',
    actor: 'operator',
    actorId: `${row.maker}+${checker.name}`,
    reason: p.reason,
    evidence: { resolvedVia: 'console, dual control', approvalId: String(row.approvalId), providerStatus: provider.status, override: true },
    failureReason: `operator: ${p.reason}`,
  });
  const result = { transactionId: p.transactionId, providerStatus: provider.status, status: transition.status };
  if (transition.outcome !== 'changed') {
    const already = transition.outcome === 'unchanged' && (await leftManualAs(tx, p.orderId, 'failed'));
    return { status: 'failed', outcome: already ? 'already_resolved' : 'not_manual', result };
  }
  await recordAudit(tx, {
    operator: checker.name,
    operatorId: checker.operatorId,
    action: 'withdraw.resolve',
    subject: `order:${p.orderId}`,
    details: {
      outcome: 'failed',
      reason: p.reason,
      transactionId: p.transactionId,
      providerStatus: provider.status,
      override: true,
      maker: row.maker,
      approvalId: String(row.approvalId),
    },
    requestId: null,
  });
  return { status: 'approved', outcome: 'resolved', result };
}

async function runRetry(tx: CommonQueryMethods, row: ApprovalRow, checker: Signed): Promise<ActionResult> {
  const p = row.payload as RetryPayload;
  const retried = await retryJobs(tx, p.jobIds);
  await recordAudit(tx, {
    operator: checker.name,
    operatorId: checker.operatorId,
    action: 'jobs.retry',
    subject: `jobs:${p.jobIds.length}`,
    details: { jobIds: p.jobIds, retried, maker: row.maker, approvalId: String(row.approvalId) },
    requestId: null,
  });
  // a job that finished or is running meanwhile is not retried: the request still did what it could
  return { status: 'approved', outcome: retried === p.jobIds.length ? 'retried' : 'partly_retried', result: { retried } };
}

export function createApprovals(deps: { db: DatabasePool; review: ManualReview; ttlHours: number }) {
  const { db } = deps;

  async function request(
    maker: Signed,
    input: { kind: ApprovalKind; subject: string; payload: Record<string, unknown>; reason: string },
    requestId: string,
  ) {
    return db.transaction(async (tx) => {
      const row = await insertApproval(tx, { ...input, makerId: maker.operatorId, ttlHours: deps.ttlHours });
      await recordAudit(tx, {
        operator: maker.name,
        operatorId: maker.operatorId,
        action: 'approval.request',
        subject: `approval:${row.approvalId}`,
        details: { kind: input.kind, subject: input.subject, payload: input.payload, reason: input.reason },
        requestId,
      });
      return approvalView(row);
    });
  }

  /** Why a decision on `row` by `checker` cannot be made, as the error to answer; null when it can. */
  async function refusal(row: ApprovalRow | null, checker: Signed, decision: 'approved' | 'rejected' | 'cancelled') {
    if (!row) return new ApiError('not_found', 'no such request');
    if (row.status !== 'pending') return null; // answered as already decided
    if (row.expired) {
      await expireApproval(db, String(row.approvalId));
      return new ApiError('invalid_state', `the request expired at ${new Date(row.expiresAt).toISOString()}: make a new one`);
    }
    const own = row.makerId.toString() === checker.operatorId;
    if (decision === 'cancelled' && !own) return new ApiError('forbidden', 'only its maker may withdraw a request');
    if (decision !== 'cancelled' && own) return new ApiError('forbidden', 'the second signature must be another operator’s');
    return null;
  }

  async function decide(
    approvalId: string,
    checker: Signed,
    decision: 'approved' | 'rejected' | 'cancelled',
    note: string | null,
    requestId: string,
  ) {
    const before = await findApproval(db, approvalId);
    const refused = await refusal(before, checker, decision);
    if (refused) throw refused;
    if (before?.status !== 'pending') return { changed: false, approval: approvalView(before!) };
    // the provider is asked before the transaction (never hold one across an HTTP call)
    const provider =
      decision === 'approved' && before.kind === 'withdraw.resolve_override'
        ? await deps.review.askProvider((before.payload as OverridePayload).transactionId)
        : null;
    const decided = await db.transaction(async (tx) => {
      const row = await decideApproval(tx, {
        approvalId,
        status: decision,
        checkerId: decision === 'cancelled' ? null : checker.operatorId,
        note,
      });
      if (!row) return null; // decided by someone else an instant ago
      let action: ActionResult | null = null;
      if (decision === 'approved') {
        if (row.kind === 'account.credit') action = await runCredit(tx, row, checker);
        else if (row.kind === 'withdraw.resolve_override') action = await runOverride(tx, row, checker, provider!);
        else action = await runRetry(tx, row, checker);
        await setApprovalOutcome(tx, approvalId, action.status, action.outcome, action.result);
      }
      await recordAudit(tx, {
        operator: checker.name,
        operatorId: checker.operatorId,
        action: `approval.${decision === 'approved' ? 'approve' : decision === 'rejected' ? 'reject' : 'cancel'}`,
        subject: `approval:${approvalId}`,
        details: { kind: row.kind, subject: row.subject, maker: row.maker, note, outcome: action?.outcome ?? null },
        requestId,
      });
      return row;
    });
    const after = await findApproval(db, approvalId);
    return { changed: decided !== null, approval: approvalView(after!) };
  }

  return {
    request,
    approve: (id: string, checker: Signed, note: string | null, requestId: string) => decide(id, checker, 'approved', note, requestId),
    reject: (id: string, checker: Signed, note: string, requestId: string) => decide(id, checker, 'rejected', note, requestId),
    cancel: (id: string, maker: Signed, requestId: string) => decide(id, maker, 'cancelled', null, requestId),
  };
}

export type Approvals = ReturnType<typeof createApprovals>;
