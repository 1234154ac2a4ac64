// The gateway component: submits a withdrawal to the payout provider once the ledger hold is
// recorded (write last, read first), classifies the answer and records it with its consequence
// in one Balance DB transaction (sql/balance/0003: gateway_submit_result).
import { performance } from 'node:perf_hooks';
import type { DatabasePool } from 'slonik';
import { holdRecorded, holdsRecorded } from '../ledger/ledgerPosting.ts';
import type { Logger } from '../logger.ts';
import { formatMinor } from '../money/money.ts';
import { findInitOrdersByTransactionIds, findOrderByTransactionId, type OrderRow } from '../withdraw/withdrawQueries.ts';
import { recordSubmitResult, recordSubmitResults, type SubmitResultInput } from './gatewayQueries.ts';
import type { PspAdapter, SubmitOutcome } from './pspAdapter.ts';

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
    const { outcome, durationMs } = await callProvider(order, signal);
    const recorded = await recordSubmitResult(balance, {
      transactionId: order.transactionId,
      result: outcome.kind,
      httpStatus: outcome.httpStatus,
      detail: outcome.kind === 'unknown' ? { reason: outcome.reason, ...outcome.detail } : outcome.detail,
      durationMs,
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

  async function callProvider(order: OrderRow, signal?: AbortSignal): Promise<{ outcome: SubmitOutcome; durationMs: number }> {
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
    return { outcome, durationMs: performance.now() - started };
  }

  /**
   * Many submissions at once: one query for the orders, one for the holds that are not proven,
   * the provider calls concurrently (bounded by the HTTP client's connections), one transaction
   * for all the answers. A crash in between is safe: the job runs again, the orders still `init`
   * are submitted again, and the provider replays its first answer for the same key.
   */
  async function submitBatch(jobs: readonly SubmitJob[], signal?: AbortSignal): Promise<Record<string, number>> {
    const orders = await findInitOrdersByTransactionIds(
      balance,
      jobs.map((job) => job.transactionId),
    );
    const unproven = jobs.filter((job) => job.heldJournalId == null).map((job) => job.transactionId);
    const held = await holdsRecorded(ledger, unproven);
    const ready = orders.filter((order) => !unproven.includes(order.transactionId) || held.has(order.transactionId));
    const answers = await Promise.all(
      ready.map(async (order): Promise<SubmitResultInput> => {
        const { outcome, durationMs } = await callProvider(order, signal);
        return {
          transactionId: order.transactionId,
          result: outcome.kind,
          httpStatus: outcome.httpStatus,
          detail: outcome.kind === 'unknown' ? { reason: outcome.reason, ...outcome.detail } : outcome.detail,
          durationMs,
          failureCode: outcome.kind === 'rejected' ? outcome.code : null,
        };
      }),
    );
    const recorded = await recordSubmitResults(balance, answers, {
      attemptsMax: settings.submitAttemptsMax,
      retryBaseMs: settings.retryBaseMs,
      retryMaxMs: settings.retryMaxMs,
    });
    const counts: Record<string, number> = { skipped: jobs.length - ready.length };
    for (const row of recorded) counts[row.outcome] = (counts[row.outcome] ?? 0) + 1;
    if (ready.length < orders.length) {
      // holds not recorded yet: these go back as single submissions, which read the ledger again
      throw new HoldNotRecordedError(`${orders.length - ready.length} withdrawals of the batch have no ledger hold yet`);
    }
    return counts;
  }

  return { submit, submitBatch };
}

export type GatewayService = ReturnType<typeof createGatewayService>;
