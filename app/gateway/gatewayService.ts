// The gateway component: submits a withdrawal to the payout provider once the ledger hold is
// recorded (write last, read first), classifies the answer and records it with its consequence
// in one Balance DB transaction (sql/balance/0003: gateway_submit_result).
import { performance } from 'node:perf_hooks';
import type { DatabasePool } from 'slonik';
import { holdRecorded } from '../ledger/ledgerPosting.ts';
import type { Logger } from '../logger.ts';
import { formatMinor, isCurrency } from '../money/money.ts';
import { findOrderByTransactionId } from '../withdraw/withdrawQueries.ts';
import { recordSubmitResult } from './gatewayQueries.ts';
import type { PspAdapter } from './pspAdapter.ts';

export type GatewaySettings = Readonly<{ submitAttemptsMax: number; retryBaseMs: number; retryMaxMs: number }>;

export class HoldNotRecordedError extends Error {
  override readonly name = 'HoldNotRecordedError';
}

export type SubmitJob = Readonly<{ transactionId: string; heldJournalId?: number | null; source?: string }>;

export function createGatewayService(deps: {
  balance: DatabasePool;
  ledger: DatabasePool;
  psp: PspAdapter;
  settings: GatewaySettings;
  logger: Logger;
}) {
  const { balance, ledger, psp, settings } = deps;

  async function submit(job: SubmitJob, signal?: AbortSignal): Promise<string> {
    const order = await findOrderByTransactionId(balance, job.transactionId);
    if (!order) return 'no_such_order';
    if (order.status !== 'init') return `already_${order.status}`;
    // The ledger.held event proves the hold; anything else must read the ledger first.
    if (job.heldJournalId == null && !(await holdRecorded(ledger, job.transactionId))) {
      throw new HoldNotRecordedError(`withdraw ${job.transactionId}: the ledger hold is not recorded yet`);
    }
    if (!isCurrency(order.currency)) throw new Error(`order ${order.orderId} has unknown currency ${order.currency}`);
    const started = performance.now();
    const outcome = await psp.submitPayout(
      {
        reference: order.transactionId,
        amount: formatMinor(order.amountMinor, order.currency),
        currency: order.currency,
        destination: order.toAccountId,
      },
      signal,
    );
    const recorded = await recordSubmitResult(balance, {
      transactionId: order.transactionId,
      result: outcome.kind,
      httpStatus: outcome.httpStatus,
      detail: outcome.kind === 'unknown' ? { reason: outcome.reason, ...outcome.detail } : outcome.detail,
      durationMs: performance.now() - started,
      attemptsMax: settings.submitAttemptsMax,
      retryBaseMs: settings.retryBaseMs,
      retryMaxMs: settings.retryMaxMs,
      failureCode: outcome.kind === 'rejected' ? outcome.code : null,
    });
    if (outcome.kind === 'unknown') {
      deps.logger.warn(
        { transactionId: order.transactionId, reason: outcome.reason, attempt: recorded.attempt, outcome: recorded.outcome },
        'payout outcome unknown',
      );
    }
    return recorded.outcome;
  }

  return { submit };
}

export type GatewayService = ReturnType<typeof createGatewayService>;
