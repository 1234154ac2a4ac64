// What the system needs from a payout provider. The simulator and real providers sit behind this
// interface; every answer is classified here, once, into a closed set.

export type PayoutRequest = Readonly<{
  /** our transactionId: also the provider's idempotency key */
  reference: string;
  /** decimal string in major units, e.g. "123.12" */
  amount: string;
  currency: string;
  destination: string;
}>;

export type SubmitOutcome =
  /** the provider took the payout; its result comes later (callback or status query) */
  | { readonly kind: 'accepted'; readonly httpStatus: number; readonly detail: Record<string, unknown> }
  /** the provider says the payout will never happen: safe to release the money */
  | { readonly kind: 'rejected'; readonly httpStatus: number; readonly code: string; readonly detail: Record<string, unknown> }
  /** timeout, 5xx, reset, anything else: the payout may or may not have happened */
  | { readonly kind: 'unknown'; readonly httpStatus: number | null; readonly reason: string; readonly detail: Record<string, unknown> };

export type PayoutLookup =
  | {
      readonly kind: 'found';
      readonly status: 'pending' | 'paid' | 'failed';
      readonly failureCode: string | null;
      readonly detail: Record<string, unknown>;
    }
  | { readonly kind: 'not_found' }
  | { readonly kind: 'unknown'; readonly reason: string };

/** A day's settlement statement as the provider sent it: the CSV text (see reconcile/settlementStatement.ts). */
export type StatementFetch =
  | { readonly kind: 'found'; readonly csv: string }
  /** timeout, 5xx, a body too large, anything else: nothing learned, try again later */
  | { readonly kind: 'unknown'; readonly reason: string };

export interface PspAdapter {
  submitPayout(request: PayoutRequest, signal?: AbortSignal): Promise<SubmitOutcome>;
  getPayout(reference: string, signal?: AbortSignal): Promise<PayoutLookup>;
  /** The statement of one UTC day, `date` as YYYY-MM-DD: every payout settled (paid or reversed) that day. */
  getSettlementStatement(date: string, signal?: AbortSignal): Promise<StatementFetch>;
  close(): Promise<void>;
}
