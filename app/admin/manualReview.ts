// Manual review: the orders a human must decide, with their evidence, and the decision itself.
// Resolving `failed` releases the money back to the user; if the provider did pay, that pays twice.
// So it is refused unless the provider says the payout failed, or the provider has no record of it
// AND our own records prove it never took it: no submission accepted, none whose outcome was
// unknown (a timeout or a 5xx may have been executed), no callback, no status query that found it,
// and no submission job left that could still reach it. A 404 alone proves nothing (a proxy, a
// wrong base URL, a provider that lost or has not yet written its record). An operator holding
// evidence may override, with a reason, audited. Results are a closed set of values; the HTTP
// routes (reviewRoutes.ts) and the console turn them into replies.
import type { DatabasePool } from 'slonik';
import type { PspAdapter } from '../gateway/pspAdapter.ts';
import { transitionWithdraw, findOrder } from '../withdraw/withdrawQueries.ts';
import type { WithdrawStatus } from '../withdraw/withdrawStateMachine.ts';
import { recordAudit } from './auditLog.ts';
import {
  leftManualAs,
  orderWithEvidence,
  ordersInStatusWithEvidence,
  recordResolutionQuery,
  submissionEvidence,
  type OrderWithEvidence,
  type SubmissionEvidence,
} from './manualReviewQueries.ts';

export type { SubmissionEvidence } from './manualReviewQueries.ts';

export type ProviderVerdict = Readonly<{
  status: 'pending' | 'paid' | 'failed' | 'not_found' | 'unknown';
  reason: string;
  detail: Record<string, unknown>;
}>;

export type ResolveRequest = Readonly<{
  orderId: string;
  outcome: 'success' | 'failed';
  reason: string;
  /** resolve `failed` although the provider could not confirm that nothing was paid */
  override: boolean;
  operator: string;
  requestId: string | null;
}>;

export type ResolveResult =
  | {
      readonly kind: 'resolved' | 'already_resolved';
      readonly transactionId: string;
      readonly status: WithdrawStatus;
      readonly provider: ProviderVerdict | null;
    }
  | { readonly kind: 'not_found' }
  /** the order is not in manual review (and did not leave it with this outcome) */
  | { readonly kind: 'not_manual'; readonly transactionId: string; readonly status: WithdrawStatus }
  /** releasing the money could pay twice: the provider reports the payout pending or paid */
  | { readonly kind: 'provider_disagrees'; readonly transactionId: string; readonly provider: ProviderVerdict }
  /** the provider could not be asked, and resolving failed needs its answer */
  | { readonly kind: 'provider_unavailable'; readonly transactionId: string; readonly provider: ProviderVerdict }
  /**
   * the provider has no record of the payout, but ours say it took it, may have, or may still:
   * releasing the money could pay twice
   */
  | {
      readonly kind: 'records_disagree';
      readonly transactionId: string;
      readonly provider: ProviderVerdict;
      readonly evidence: SubmissionEvidence;
      readonly reasons: readonly RecordsReason[];
    };

/** Why our records do not prove that the provider never took the payout. */
export const RECORDS_REASONS = ['accepted_attempt', 'unknown_attempt', 'callback', 'provider_reported', 'submission_pending'] as const;
export type RecordsReason = (typeof RECORDS_REASONS)[number];

/** The reasons, if any, why our records do not prove the provider never took the payout. */
export function recordsAllowingPayout(evidence: SubmissionEvidence): RecordsReason[] {
  const reasons: RecordsReason[] = [];
  if (evidence.acceptedAttempts > 0) reasons.push('accepted_attempt');
  if (evidence.unknownAttempts > 0) reasons.push('unknown_attempt');
  if (evidence.callbacks > 0) reasons.push('callback');
  if (evidence.providerReported > 0) reasons.push('provider_reported');
  if (evidence.submissionsPending > 0) reasons.push('submission_pending');
  return reasons;
}

/** What the provider says about a payout now; never throws (an unreachable provider is `unknown`). */
export async function askProvider(psp: PspAdapter | null, transactionId: string): Promise<ProviderVerdict> {
  if (!psp) return { status: 'unknown', reason: 'no payout provider configured (PSP_BASE_URL)', detail: {} };
  const lookup = await psp.getPayout(transactionId);
  if (lookup.kind === 'found') return { status: lookup.status, reason: lookup.status, detail: lookup.detail };
  if (lookup.kind === 'not_found') return { status: 'not_found', reason: 'not found', detail: {} };
  return { status: 'unknown', reason: lookup.reason, detail: { reason: lookup.reason } };
}

/**
 * The guard: whether resolving `failed` could release money the provider paid out. Only the
 * provider's own `failed` settles it alone; its `not_found` counts only when our records (the
 * evidence) prove it never took the payout and nothing can still submit it.
 */
export function failedResolutionRefused(
  provider: ProviderVerdict,
  evidence: SubmissionEvidence,
): 'provider_disagrees' | 'provider_unavailable' | 'records_disagree' | null {
  if (provider.status === 'failed') return null;
  if (provider.status === 'unknown') return 'provider_unavailable';
  if (provider.status === 'pending' || provider.status === 'paid') return 'provider_disagrees';
  return recordsAllowingPayout(evidence).length > 0 ? 'records_disagree' : null;
}

export function createManualReview(deps: { db: DatabasePool; psp: PspAdapter | null }) {
  const { db, psp } = deps;

  async function resolve(request: ResolveRequest): Promise<ResolveResult> {
    const order = await findOrder(db, request.orderId);
    if (!order) return { kind: 'not_found' };
    const { transactionId } = order;
    const provider = order.status === 'manual' ? await askProvider(psp, transactionId) : null;
    const guarded = provider !== null && request.outcome === 'failed' && !request.override;
    // our records are read after the provider's answer: a submission recorded meanwhile is seen
    const evidence = guarded ? await submissionEvidence(db, transactionId) : null;
    const refused = guarded && evidence ? failedResolutionRefused(provider, evidence) : null;
    if (provider && refused) {
      await recordResolutionQuery(db, transactionId, provider.status, provider.detail);
      if (refused === 'records_disagree') {
        return { kind: refused, transactionId, provider, evidence: evidence!, reasons: recordsAllowingPayout(evidence!) };
      }
      return { kind: refused, transactionId, provider };
    }
    return db.transaction(async (tx): Promise<ResolveResult> => {
      if (provider) await recordResolutionQuery(tx, transactionId, provider.status, provider.detail);
      // the same final handling as a callback: capture or release, history, outbox, in this transaction
      const transition = await transitionWithdraw(tx, {
        transactionId,
        from: ['manual'],
        to: request.outcome,
        actor: 'operator',
        actorId: request.operator,
        reason: request.reason,
        evidence: {
          resolvedVia: 'manual review',
          requestId: request.requestId,
          providerStatus: provider?.status ?? null,
          override: request.override,
          ...(evidence ? { submissionEvidence: evidence } : {}),
        },
        failureReason: request.outcome === 'failed' ? `operator: ${request.reason}` : null,
      });
      const status = transition.status ?? order.status;
      if (transition.outcome === 'changed') {
        await recordAudit(tx, {
          operator: request.operator,
          action: 'withdraw.resolve',
          subject: `order:${request.orderId}`,
          details: {
            outcome: request.outcome,
            reason: request.reason,
            transactionId,
            providerStatus: provider?.status ?? null,
            override: request.override,
          },
          requestId: request.requestId,
        });
        return { kind: 'resolved', transactionId, status, provider };
      }
      // "already resolved" only for an order that left manual with this outcome; one that reached
      // it by itself was never up for resolution (only manual orders are resolved)
      if (transition.outcome === 'unchanged' && (await leftManualAs(tx, request.orderId, request.outcome))) {
        return { kind: 'already_resolved', transactionId, status, provider };
      }
      return { kind: 'not_manual', transactionId, status };
    });
  }

  return {
    list: (status: WithdrawStatus, limit: number): Promise<readonly OrderWithEvidence[]> => ordersInStatusWithEvidence(db, status, limit),
    get: (orderId: string): Promise<OrderWithEvidence | null> => orderWithEvidence(db, orderId),
    askProvider: (transactionId: string) => askProvider(psp, transactionId),
    resolve,
  };
}

export type ManualReview = ReturnType<typeof createManualReview>;
