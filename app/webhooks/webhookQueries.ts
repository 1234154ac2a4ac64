// SQL of outgoing events on the Balance DB: endpoints, deliveries, and the typed wrappers of the
// plpgsql functions the delivery job calls (sql/balance/functions/webhook_*.sql). The signing secret
// is read only by claimDeliveries, to sign; no listing ever selects it.
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';

export const WEBHOOK_EVENT_TYPES = [
  'withdraw.processing',
  'withdraw.manual',
  'withdraw.success',
  'withdraw.failed',
  'withdraw.reversed',
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];
export const ENDPOINT_STATUSES = ['active', 'disabled', 'deleted'] as const;
export const DELIVERY_STATUSES = ['pending', 'delivered', 'failed', 'cancelled'] as const;

export const EndpointRow = z.object({
  endpointId: z.string(),
  url: z.string(),
  events: z.array(z.enum(WEBHOOK_EVENT_TYPES)),
  status: z.enum(ENDPOINT_STATUSES),
  statusReason: z.string().nullable(),
  consecutiveFailures: z.number().int(),
  failingSince: z.number().nullable(),
  nextAttemptAt: z.number(),
  lastSuccessAt: z.number().nullable(),
  createdBy: z.string(),
  createdAt: z.number(),
});
export type EndpointRow = z.infer<typeof EndpointRow>;

const endpointColumns = sql.fragment`
  e.id as "endpointId", e.url, e.event_types as events, e.status, e.status_reason as "statusReason",
  e.consecutive_failures as "consecutiveFailures", e.failing_since as "failingSince", e.next_attempt_at as "nextAttemptAt",
  e.last_success_at as "lastSuccessAt", e.created_by as "createdBy", e.created_at as "createdAt"`;

export type InsertEndpointResult = { outcome: 'created'; endpoint: EndpointRow } | { outcome: 'url_taken'; endpointId: string };

/** A new endpoint; a URL already registered (and not deleted) is url_taken, with that endpoint's id. */
export async function insertEndpoint(
  db: CommonQueryMethods,
  p: { url: string; events: readonly WebhookEventType[]; secret: string; createdBy: string },
): Promise<InsertEndpointResult> {
  const row = await db.maybeOne(sql.type(EndpointRow)`
    with inserted as (
      insert into webhook_endpoints (url, event_types, secret, created_by)
      values (${p.url}, ${sql.array([...p.events], 'text')}, ${p.secret}, ${p.createdBy})
      on conflict (url) where status <> 'deleted' do nothing
      returning *
    )
    select ${endpointColumns} from inserted e`);
  if (row) return { outcome: 'created', endpoint: row };
  const existing = await db.oneFirst(sql.type(z.object({ id: z.string() }))`
    select id from webhook_endpoints where url = ${p.url} and status <> 'deleted'`);
  return { outcome: 'url_taken', endpointId: existing };
}

export async function listEndpoints(db: CommonQueryMethods, includeDeleted: boolean): Promise<readonly EndpointRow[]> {
  return db.any(sql.type(EndpointRow)`
    select ${endpointColumns} from webhook_endpoints e
     where ${includeDeleted ? sql.fragment`true` : sql.fragment`e.status <> 'deleted'`}
     order by e.created_at, e.id limit 1000`);
}

export async function findEndpoint(db: CommonQueryMethods, endpointId: string): Promise<EndpointRow | null> {
  return db.maybeOne(sql.type(EndpointRow)`select ${endpointColumns} from webhook_endpoints e where e.id = ${endpointId}`);
}

/** Deletes an endpoint: nothing more is sent to it, its waiting deliveries are cancelled. */
export async function deleteEndpoint(db: CommonQueryMethods, endpointId: string): Promise<EndpointRow | null> {
  const row = await db.maybeOne(sql.type(EndpointRow)`
    update webhook_endpoints e set status = 'deleted', status_reason = 'deleted by an operator', updated_at = now()
     where e.id = ${endpointId} and e.status <> 'deleted'
    returning ${endpointColumns}`);
  if (row) {
    await db.query(sql.unsafe`
      update webhook_deliveries set status = 'cancelled', lease_until = null
       where endpoint_id = ${endpointId} and status = 'pending'`);
  }
  return row;
}

/** Re-enables a disabled endpoint: its failures are forgotten and its waiting deliveries go out now. */
export async function enableEndpoint(db: CommonQueryMethods, endpointId: string): Promise<EndpointRow | null> {
  const row = await db.maybeOne(sql.type(EndpointRow)`
    update webhook_endpoints e
       set status = 'active', status_reason = null, consecutive_failures = 0, failing_since = null,
           next_attempt_at = now(), updated_at = now()
     where e.id = ${endpointId} and e.status = 'disabled'
    returning ${endpointColumns}`);
  if (row) {
    await db.query(sql.unsafe`
      update webhook_deliveries set next_attempt_at = now() where endpoint_id = ${endpointId} and status = 'pending'`);
    await wakeEndpoint(db, endpointId);
  }
  return row;
}

export async function wakeEndpoint(db: CommonQueryMethods, endpointId: string, delayMs = 0): Promise<void> {
  await db.query(sql.unsafe`
    select webhook_wake(${endpointId}, now() + make_interval(secs => ${delayMs / 1000}))`);
}

const ClaimedRow = z.object({
  deliveryId: z.bigint(),
  eventId: z.string(),
  type: z.enum(WEBHOOK_EVENT_TYPES),
  occurredAt: z.number(),
  data: z.record(z.unknown()),
  attempts: z.number().int(),
  url: z.string(),
  secret: z.string(),
});
export type ClaimedDelivery = z.infer<typeof ClaimedRow>;

/** webhook_claim_deliveries: the heads of the endpoint's chains that are due, leased for leaseMs. */
export async function claimDeliveries(
  db: CommonQueryMethods,
  p: { endpointId: string; limit: number; leaseMs: number },
): Promise<readonly ClaimedDelivery[]> {
  return db.any(sql.type(ClaimedRow)`
    select delivery_id as "deliveryId", event_id as "eventId", type, occurred_at as "occurredAt", data, attempts, url, secret
      from webhook_claim_deliveries(${p.endpointId}, ${p.limit}, ${p.leaseMs})`);
}

export type DeliveryResult = Readonly<{ deliveryId: string; delivered: boolean; statusCode: number | null; error: string | null }>;

export type DeliverySchedule = Readonly<{
  retryBaseMs: number;
  retryMaxMs: number;
  horizonMs: number;
  disableAfterMs: number;
}>;

const RecordRow = z.object({ nextRunAt: z.number().nullable(), disabled: z.boolean() });

/** webhook_record_results: what a round got, the retries, the endpoint's health, its next round. */
export async function recordResults(
  db: CommonQueryMethods,
  p: { endpointId: string; results: readonly DeliveryResult[]; schedule: DeliverySchedule },
): Promise<z.infer<typeof RecordRow>> {
  return db.one(sql.type(RecordRow)`
    select next_run_at as "nextRunAt", disabled
      from webhook_record_results(${p.endpointId}, ${JSON.stringify(p.results)}::jsonb, ${p.schedule.retryBaseMs},
                                  ${p.schedule.retryMaxMs}, ${p.schedule.horizonMs}, ${p.schedule.disableAfterMs})`);
}

export const DeliveryRow = z.object({
  deliveryId: z.bigint(),
  endpointId: z.string(),
  eventId: z.string(),
  type: z.enum(WEBHOOK_EVENT_TYPES),
  withdrawOrderId: z.string(),
  status: z.enum(DELIVERY_STATUSES),
  attempts: z.number().int(),
  nextAttemptAt: z.number(),
  firstAttemptAt: z.number().nullable(),
  lastAttemptAt: z.number().nullable(),
  lastStatusCode: z.number().int().nullable(),
  lastError: z.string().nullable(),
  deliveredAt: z.number().nullable(),
  createdAt: z.number(),
});
export type DeliveryRow = z.infer<typeof DeliveryRow>;

const deliveryColumns = sql.fragment`
  d.id as "deliveryId", d.endpoint_id as "endpointId", d.event_id as "eventId", ev.type, d.order_id as "withdrawOrderId",
  d.status, d.attempts, d.next_attempt_at as "nextAttemptAt", d.first_attempt_at as "firstAttemptAt",
  d.last_attempt_at as "lastAttemptAt", d.last_status_code as "lastStatusCode", d.last_error as "lastError",
  d.delivered_at as "deliveredAt", d.created_at as "createdAt"`;

export type DeliveryFilter = Readonly<{
  endpointId: string | null;
  status: (typeof DELIVERY_STATUSES)[number] | null;
  withdrawOrderId: string | null;
}>;

/** Deliveries newest first (keyset on id): per endpoint through webhook_deliveries_endpoint_idx. */
export async function listDeliveries(
  db: CommonQueryMethods,
  filter: DeliveryFilter,
  beforeId: bigint | null,
  limit: number,
): Promise<readonly DeliveryRow[]> {
  const conditions = [sql.fragment`true`];
  if (filter.endpointId !== null) conditions.push(sql.fragment`d.endpoint_id = ${filter.endpointId}`);
  if (filter.status !== null) conditions.push(sql.fragment`d.status = ${filter.status}`);
  if (filter.withdrawOrderId !== null) conditions.push(sql.fragment`d.order_id = ${filter.withdrawOrderId}`);
  if (beforeId !== null) conditions.push(sql.fragment`d.id < ${beforeId}`);
  return db.any(sql.type(DeliveryRow)`
    select ${deliveryColumns} from webhook_deliveries d join webhook_events ev on ev.id = d.event_id
     where ${sql.join(conditions, sql.fragment` and `)}
     order by d.id desc limit ${limit}`);
}

export type RetryResult = { outcome: 'retrying'; delivery: DeliveryRow } | { outcome: 'not_found' } | { outcome: 'endpoint_deleted' };

/**
 * An operator's replay: the delivery (delivered, failed or waiting) goes out again now, with a fresh
 * retry horizon; it is the head of its order's chain again, so later events of that order wait for it.
 */
export async function retryDelivery(db: CommonQueryMethods, deliveryId: bigint): Promise<RetryResult> {
  const current = await db.maybeOne(sql.type(z.object({ endpointStatus: z.enum(ENDPOINT_STATUSES) }))`
    select e.status as "endpointStatus" from webhook_deliveries d join webhook_endpoints e on e.id = d.endpoint_id
     where d.id = ${deliveryId} for update of d`);
  if (!current) return { outcome: 'not_found' };
  if (current.endpointStatus === 'deleted') return { outcome: 'endpoint_deleted' };
  const delivery = await db.one(sql.type(DeliveryRow)`
    with retried as (
      update webhook_deliveries d
         set status = 'pending', next_attempt_at = now(), lease_until = null, first_attempt_at = null, delivered_at = null
       where d.id = ${deliveryId}
      returning d.*
    )
    select ${deliveryColumns} from retried d join webhook_events ev on ev.id = d.event_id`);
  await wakeEndpoint(db, delivery.endpointId);
  return { outcome: 'retrying', delivery };
}

export async function sweepDeliveries(db: CommonQueryMethods): Promise<number> {
  return db.oneFirst(sql.type(z.object({ woken: z.number() }))`select webhook_sweep() as woken`);
}
