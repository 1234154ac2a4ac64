// SQL of the gateway on the Balance DB: submission results, the callback inbox.
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';

const SubmitResultRow = z.object({ outcome: z.string(), attempt: z.number().int(), retryAt: z.number().nullable() });
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
    select outcome, attempt, retry_at as "retryAt"
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

/** Records many submission answers in one transaction (sql/balance/0006). */
export async function recordSubmitResults(
  db: CommonQueryMethods,
  results: readonly SubmitResultInput[],
  settings: { attemptsMax: number; retryBaseMs: number; retryMaxMs: number },
): Promise<readonly z.infer<typeof BatchResultRow>[]> {
  if (results.length === 0) return [];
  const payload = results.map((r) => ({ ...r, durationMs: Math.round(r.durationMs) }));
  return db.any(sql.type(BatchResultRow)`
    select transaction_id as "transactionId", outcome, attempt, retry_at as "retryAt"
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

const AppliedRow = z.object({ inboxId: z.bigint(), eventId: z.string(), outcome: z.string() });
export type AppliedRow = z.infer<typeof AppliedRow>;

/** Applies up to batchSizeMax pending callbacks in one transaction. */
export async function applyInboxBatch(db: CommonQueryMethods, batchSizeMax: number): Promise<readonly AppliedRow[]> {
  return db.any(sql.type(AppliedRow)`
    select inbox_id as "inboxId", event_id as "eventId", outcome from gateway_inbox_apply(${batchSizeMax})`);
}
