// SQL of manual review on the Balance DB: orders with their evidence, and the provider answers an
// operator's resolution was judged on.
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import type { WithdrawStatus } from '../withdraw/withdrawStateMachine.ts';
import { orderColumns, OrderRow } from '../withdraw/withdrawQueries.ts';

const EvidenceRow = OrderRow.extend({ evidence: z.unknown() });
export type OrderWithEvidence = z.infer<typeof EvidenceRow>;

const evidenceOf = sql.fragment`
  jsonb_build_object(
    'history', (select jsonb_agg(jsonb_build_object('from', h.from_status, 'to', h.to_status, 'actor', h.actor,
                 'actorId', h.actor_id, 'reason', h.reason, 'evidence', h.evidence, 'at', h.created_at) order by h.id)
                  from withdraw_status_history h where h.order_id = o.id),
    'submitAttempts', (select jsonb_agg(jsonb_build_object('result', a.result, 'httpStatus', a.http_status,
                 'detail', a.detail, 'durationMs', a.duration_ms, 'at', a.created_at) order by a.id)
                  from gateway_submit_attempts a where a.transaction_id = o.transaction_id),
    'statusQueries', (select jsonb_agg(jsonb_build_object('result', q.result, 'detail', q.detail, 'at', q.created_at) order by q.id)
                  from gateway_status_queries q where q.transaction_id = o.transaction_id),
    'callbacks', (select jsonb_agg(jsonb_build_object('eventId', i.event_id, 'status', i.status, 'failureCode', i.failure_code,
                 'outcome', i.outcome, 'receivedAt', i.received_at) order by i.id)
                  from gateway_inbox i where i.reference = o.transaction_id::text)
  )`;

/** Orders in one status, oldest change first, each with everything that happened to it. */
export async function ordersInStatusWithEvidence(
  db: CommonQueryMethods,
  status: WithdrawStatus,
  limit: number,
): Promise<readonly OrderWithEvidence[]> {
  return db.any(sql.type(EvidenceRow)`
    select ${orderColumns}, ${evidenceOf} as evidence
      from withdraw_orders o where o.status = ${status} order by o.updated_at limit ${limit}`);
}

export async function orderWithEvidence(db: CommonQueryMethods, orderId: string): Promise<OrderWithEvidence | null> {
  return db.maybeOne(sql.type(EvidenceRow)`
    select ${orderColumns}, ${evidenceOf} as evidence from withdraw_orders o where o.id = ${orderId}`);
}

/** The provider's answer an operator's resolution was judged on, kept as evidence (not acted on). */
export async function recordResolutionQuery(
  db: CommonQueryMethods,
  transactionId: string,
  result: 'pending' | 'paid' | 'failed' | 'not_found' | 'unknown',
  detail: Record<string, unknown>,
): Promise<void> {
  await db.query(sql.unsafe`
    insert into gateway_status_queries (transaction_id, result, detail)
    values (${transactionId}, ${result}, ${sql.jsonb({ ...detail, askedBy: 'resolve' } as Parameters<typeof sql.jsonb>[0])})`);
}

/** Whether the order once left manual for `outcome` (an operator resolved it so before). */
export async function leftManualAs(db: CommonQueryMethods, orderId: string, outcome: 'success' | 'failed'): Promise<boolean> {
  return db.exists(sql.unsafe`
    select 1 from withdraw_status_history where order_id = ${orderId} and from_status = 'manual' and to_status = ${outcome}`);
}

export const SubmissionEvidenceRow = z.object({
  acceptedAttempts: z.number().int(),
  unknownAttempts: z.number().int(),
  rejectedAttempts: z.number().int(),
  callbacks: z.number().int(),
  /** status queries the provider answered with the payout (pending, paid or failed) */
  providerReported: z.number().int(),
  /** gateway__submit or gateway__submit_batch jobs for it, queued, backing off or running */
  submissionsPending: z.number().int(),
});
export type SubmissionEvidence = z.infer<typeof SubmissionEvidenceRow>;

/**
 * What our own records say about whether the provider took this payout, in ONE statement (one
 * snapshot): a submission job records its attempt and only then completes, so every snapshot sees
 * the attempt or the job still there, never neither.
 */
export async function submissionEvidence(db: CommonQueryMethods, transactionId: string): Promise<SubmissionEvidence> {
  return db.one(sql.type(SubmissionEvidenceRow)`
    select (select count(*) from gateway_submit_attempts a where a.transaction_id = ${transactionId} and a.result = 'accepted')::int
             as "acceptedAttempts",
           (select count(*) from gateway_submit_attempts a where a.transaction_id = ${transactionId} and a.result = 'unknown')::int
             as "unknownAttempts",
           (select count(*) from gateway_submit_attempts a where a.transaction_id = ${transactionId} and a.result = 'rejected')::int
             as "rejectedAttempts",
           (select count(*) from gateway_inbox i
             where i.reference = ${transactionId} and coalesce(i.payload ->> 'source', '') <> 'status_query')::int as callbacks,
           (select count(*) from gateway_status_queries q
             where q.transaction_id = ${transactionId} and q.result in ('pending', 'paid', 'failed'))::int as "providerReported",
           -- graphile-worker's own table: its public view does not show payloads
           (select count(*) from graphile_worker._private_jobs j join graphile_worker._private_tasks k on k.id = j.task_id
             where (k.identifier = 'gateway__submit' and j.key = ${`gateway-submit:${transactionId}`})
                or (k.identifier = 'gateway__submit_batch'
                    and j.payload::jsonb -> 'submits' @> jsonb_build_array(jsonb_build_object('transactionId', ${transactionId}::text)))
           )::int as "submissionsPending"`);
}
