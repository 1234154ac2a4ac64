// SQL of the gateway on the Balance DB: submission results, the callback inbox.
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import type { PayoutLookup } from './pspAdapter.ts';

/** What recording a submission answer did: the order's next status, or a retry at retryAt. */
export const SUBMIT_OUTCOMES = ['processing', 'failed', 'manual', 'retry'] as const;
/** withdraw_transition's outcome (null for a retry, which moves nothing). */
export const TRANSITION_OUTCOMES = ['changed', 'unchanged', 'conflict', 'not_found'] as const;

const SubmitResultRow = z.object({
  outcome: z.enum(SUBMIT_OUTCOMES),
  transition: z.enum(TRANSITION_OUTCOMES).nullable(),
  attempt: z.number().int(),
  retryAt: z.number().nullable(),
});
export type SubmitResultRow = z.infer<typeof SubmitResultRow>;

export async function recordSubmitResult(
  db: CommonQueryMethods,
  input: {
    transactionId: string;
    result: 'accepted' | 'rejected' | 'unknown';
    httpStatus: number | null;
    detail: Record<string, unknown>;
    durationMs: number;
    attemptsMax: number;
    retryBaseMs: number;
    retryMaxMs: number;
    failureCode: string | null;
  },
): Promise<SubmitResultRow> {
  return db.one(sql.type(SubmitResultRow)`
    select outcome, transition, attempt, retry_at as "retryAt"
      from gateway_submit_result(${input.transactionId}, ${input.result}, ${input.httpStatus},
                                 ${sql.jsonb(input.detail as Parameters<typeof sql.jsonb>[0])}, ${Math.round(input.durationMs)},
                                 ${input.attemptsMax}, ${input.retryBaseMs}, ${input.retryMaxMs}, ${input.failureCode})`);
}

export type SubmitResultInput = Readonly<{
  transactionId: string;
  result: 'accepted' | 'rejected' | 'unknown';
  httpStatus: number | null;
  detail: Record<string, unknown>;
  durationMs: number;
  failureCode: string | null;
}>;

const BatchResultRow = SubmitResultRow.extend({ transactionId: z.string() });

/** Records many submission answers in one transaction (sql/balance/functions/gateway_submit_results.sql). */
export async function recordSubmitResults(
  db: CommonQueryMethods,
  results: readonly SubmitResultInput[],
  settings: { attemptsMax: number; retryBaseMs: number; retryMaxMs: number },
): Promise<readonly z.infer<typeof BatchResultRow>[]> {
  if (results.length === 0) return [];
  const payload = results.map((r) => ({ ...r, durationMs: Math.round(r.durationMs) }));
  return db.any(sql.type(BatchResultRow)`
    select transaction_id as "transactionId", outcome, transition, attempt, retry_at as "retryAt"
      from gateway_submit_results(${sql.jsonb(payload as unknown as Parameters<typeof sql.jsonb>[0])},
                                  ${settings.attemptsMax}, ${settings.retryBaseMs}, ${settings.retryMaxMs})`);
}

export type InboxInsert = Readonly<{
  eventId: string;
  reference: string;
  status: 'paid' | 'failed';
  failureCode: string | null;
  occurredAt: string;
  payload: unknown;
  signedAtSec: number;
}>;

/** Stores a callback; false when that eventId was already stored (a duplicate changes nothing). */
export async function insertInbox(db: CommonQueryMethods, event: InboxInsert): Promise<boolean> {
  const inserted = await db.maybeOne(sql.type(z.object({ id: z.bigint() }))`
    insert into gateway_inbox (event_id, reference, status, failure_code, occurred_at, payload, signed_at)
    values (${event.eventId}, ${event.reference}, ${event.status}, ${event.failureCode}, ${event.occurredAt},
            ${sql.jsonb(event.payload as Parameters<typeof sql.jsonb>[0])}, to_timestamp(${event.signedAtSec}))
    on conflict (event_id) do nothing
    returning id`);
  return inserted !== null;
}

/** What applying one callback did (sql/balance/functions/gateway_apply_callback.sql). */
export const CALLBACK_OUTCOMES = ['applied', 'duplicate', 'contradiction', 'unknown_reference'] as const;
const AppliedRow = z.object({ inboxId: z.bigint(), eventId: z.string(), outcome: z.enum(CALLBACK_OUTCOMES) });
export type AppliedRow = z.infer<typeof AppliedRow>;

/** Applies up to batchSizeMax pending callbacks in one transaction. */
export async function applyInboxBatch(db: CommonQueryMethods, batchSizeMax: number): Promise<readonly AppliedRow[]> {
  return db.any(sql.type(AppliedRow)`
    select inbox_id as "inboxId", event_id as "eventId", outcome from gateway_inbox_apply(${batchSizeMax})`);
}

/** The ids a batch would take now (pending, not parked, due), in id order: for applying them one by one. */
export async function pendingInboxIds(db: CommonQueryMethods, limit: number): Promise<readonly bigint[]> {
  return db.anyFirst(sql.type(z.object({ id: z.bigint() }))`
    select i.id from gateway_inbox i
     where i.processed_at is null and i.parked_at is null and (i.retry_at is null or i.retry_at <= now())
     order by i.id limit ${limit}`);
}

/** Applies one pending callback (nothing when it is applied, parked, not due, or locked by another). */
export async function applyInboxRow(db: CommonQueryMethods, inboxId: bigint): Promise<readonly AppliedRow[]> {
  return db.any(sql.type(AppliedRow)`
    select inbox_id as "inboxId", event_id as "eventId", outcome from gateway_inbox_apply_one(${inboxId.toString()}::bigint)`);
}

/** What recording a failed callback did (sql/balance/functions/gateway_inbox_record_failure.sql). */
export const INBOX_FAILURE_OUTCOMES = ['retry', 'parked', 'gone'] as const;
export type InboxFailureOutcome = (typeof INBOX_FAILURE_OUTCOMES)[number];

/** Records that applying one callback failed: its error and attempt, a retry later, or parked (a break) after parkAfter. */
export async function recordInboxFailure(
  db: CommonQueryMethods,
  input: { inboxId: bigint; error: string; parkAfter: number; retryBaseMs: number; retryMaxMs: number },
): Promise<InboxFailureOutcome> {
  return db.oneFirst(sql.type(z.object({ outcome: z.enum(INBOX_FAILURE_OUTCOMES) }))`
    select gateway_inbox_record_failure(${input.inboxId.toString()}::bigint, ${input.error}, ${input.parkAfter},
      ${input.retryBaseMs}, ${input.retryMaxMs}) as outcome`);
}

export const STATUS_QUERY_OUTCOMES = ['answered', 'pending', 'unknown', 'manual'] as const;
export type StatusQueryOutcome = (typeof STATUS_QUERY_OUTCOMES)[number];
const StatusQueryRow = z.object({ outcome: z.enum(STATUS_QUERY_OUTCOMES), nextQueryAt: z.number().nullable() });

/**
 * Records one answer of the provider's status API and acts on it in the same transaction
 * (sql/balance/functions/gateway_record_status_query.sql): a definitive answer goes to the inbox
 * like a callback; answers that say nothing hand a processing order to a human after the maxima;
 * and the order's next query is scheduled at `now` plus `nextBaseMs` doubled with every query so
 * far, at most `nextMaxMs`.
 */
export async function recordStatusQuery(
  db: CommonQueryMethods,
  input: {
    transactionId: string;
    lookup: PayoutLookup;
    unknownMax: number;
    pendingMax: number;
    now: Date;
    nextBaseMs: number;
    nextMaxMs: number;
  },
): Promise<{ outcome: StatusQueryOutcome; nextQueryAt: number | null }> {
  const { lookup } = input;
  const result = lookup.kind === 'found' ? lookup.status : lookup.kind;
  const detail = lookup.kind === 'found' ? lookup.detail : lookup.kind === 'unknown' ? { reason: lookup.reason } : {};
  const failureCode = lookup.kind === 'found' ? lookup.failureCode : null;
  return db.one(sql.type(StatusQueryRow)`
    select outcome, next_query_at as "nextQueryAt"
      from gateway_record_status_query(${input.transactionId}, ${result}, ${failureCode},
        ${sql.jsonb(detail as Parameters<typeof sql.jsonb>[0])}, ${input.unknownMax}, ${input.pendingMax},
        ${input.now.toISOString()}::timestamptz, ${input.nextBaseMs}, ${input.nextMaxMs})`);
}
