// The operators' API of outgoing events: register an endpoint (its signing secret is shown in that
// reply only), list, delete and re-enable endpoints, list deliveries and replay one. Every change is
// written to the audit trail in its transaction; the secret never is.
import { randomBytes } from 'node:crypto';
import type { Request, Response, Router } from 'express';
import express from 'express';
import type { DatabasePool } from 'slonik';
import { recordAudit } from '../admin/auditLog.ts';
import { ApiError, okEnvelope } from '../http/apiErrors.ts';
import type { Auth } from '../http/auth.ts';
import { decodeCursor, encodeCursor } from '../http/cursor.ts';
import { readBody } from '../http/jsonBody.ts';
import { describeZodError, z } from '../http/zod.ts';
import { limitParam } from '../withdraw/withdrawSchemas.ts';
import {
  DELIVERY_STATUSES,
  deleteEndpoint,
  enableEndpoint,
  findEndpoint,
  insertEndpoint,
  listDeliveries,
  listEndpoints,
  retryDelivery,
  WEBHOOK_EVENT_TYPES,
  type DeliveryRow,
  type EndpointRow,
} from './webhookQueries.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const INT8_MAX = 2n ** 63n - 1n;
export const DELIVERIES_LIMIT_MAX = 500;

export const CreateEndpointSchema = z
  .object({
    url: z
      .string()
      .max(2048)
      .url()
      .refine((value) => /^https?:\/\//i.test(value), 'must be an http:// or https:// URL')
      .refine((value) => {
        const parsed = URL.canParse(value) ? new URL(value) : null;
        return parsed !== null && parsed.username === '' && parsed.password === '';
      }, 'must not carry credentials (the signature authenticates us)')
      .openapi({ example: 'https://payouts.example.com/hooks/withdraw' }),
    events: z
      .array(z.enum(WEBHOOK_EVENT_TYPES))
      .min(1)
      .max(WEBHOOK_EVENT_TYPES.length)
      .refine((events) => new Set(events).size === events.length, 'must not repeat a type'),
  })
  .openapi('CreateWebhookEndpointRequest');

export const EndpointView = z
  .object({
    endpointId: z.string().uuid(),
    url: z.string(),
    events: z.array(z.enum(WEBHOOK_EVENT_TYPES)),
    status: z.enum(['active', 'disabled', 'deleted']),
    statusReason: z.string().nullable().openapi({ description: 'why it was disabled or deleted' }),
    consecutiveFailures: z.number().int(),
    failingSince: z.string().datetime().nullable(),
    lastSuccessAt: z.string().datetime().nullable(),
    createdBy: z.string(),
    createdAt: z.string().datetime(),
  })
  .openapi('WebhookEndpoint');

export const CreatedEndpointView = EndpointView.extend({
  secret: z.string().openapi({ description: 'the signing secret: shown in this reply only; keep it' }),
}).openapi('CreatedWebhookEndpoint');

export const DeliveryView = z
  .object({
    deliveryId: z.string(),
    endpointId: z.string().uuid(),
    eventId: z.string().uuid(),
    type: z.enum(WEBHOOK_EVENT_TYPES),
    withdrawOrderId: z.string().uuid(),
    status: z.enum(DELIVERY_STATUSES),
    attempts: z.number().int(),
    nextAttemptAt: z.string().datetime().nullable().openapi({ description: 'when pending: the next attempt' }),
    lastAttemptAt: z.string().datetime().nullable(),
    lastStatusCode: z.number().int().nullable(),
    lastError: z.string().nullable(),
    deliveredAt: z.string().datetime().nullable(),
    createdAt: z.string().datetime(),
  })
  .openapi('WebhookDelivery');

export const ListEndpointsQuery = z.object({ includeDeleted: z.enum(['true', 'false']).optional() }).strict();

export const ListDeliveriesQuery = z
  .object({
    endpointId: z.string().regex(UUID, 'must be a UUID').optional(),
    status: z.enum(DELIVERY_STATUSES).optional(),
    withdrawOrderId: z.string().regex(UUID, 'must be a UUID').optional(),
    limit: limitParam(DELIVERIES_LIMIT_MAX, 100),
    cursor: z.string().max(512).optional(),
  })
  .strict();

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

function endpointView(row: EndpointRow) {
  return {
    endpointId: row.endpointId,
    url: row.url,
    events: row.events,
    status: row.status,
    statusReason: row.statusReason,
    consecutiveFailures: row.consecutiveFailures,
    failingSince: iso(row.failingSince),
    lastSuccessAt: iso(row.lastSuccessAt),
    createdBy: row.createdBy,
    createdAt: new Date(row.createdAt).toISOString(),
  };
}

function deliveryView(row: DeliveryRow) {
  return {
    deliveryId: row.deliveryId.toString(),
    endpointId: row.endpointId,
    eventId: row.eventId,
    type: row.type,
    withdrawOrderId: row.withdrawOrderId,
    status: row.status,
    attempts: row.attempts,
    nextAttemptAt: row.status === 'pending' ? iso(row.nextAttemptAt) : null,
    lastAttemptAt: iso(row.lastAttemptAt),
    lastStatusCode: row.lastStatusCode,
    lastError: row.lastError,
    deliveredAt: iso(row.deliveredAt),
    createdAt: new Date(row.createdAt).toISOString(),
  };
}

function parse<T extends z.ZodTypeAny>(schema: T, value: unknown): z.infer<T> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new ApiError('invalid_request', describeZodError(parsed.error));
  return parsed.data;
}

function endpointIdParam(req: Request): string {
  const id = String(req.params.endpointId);
  if (!UUID.test(id)) throw new ApiError('not_found', 'no such webhook endpoint');
  return id.toLowerCase();
}

function operatorOf(req: Request): string {
  return req.principal?.kind === 'admin' ? req.principal.operator : 'unknown';
}

/** A new signing secret: 32 random bytes. */
export function newSigningSecret(): string {
  return `whsec_${randomBytes(32).toString('base64url')}`;
}

export function webhookRoutes(deps: { auth: Auth; db: DatabasePool }): Router {
  const router = express.Router();
  const admin = deps.auth.require('admin');

  router.post('/admin/webhook-endpoints', admin, async (req: Request, res: Response) => {
    const body = parse(CreateEndpointSchema, readBody(req));
    const operator = operatorOf(req);
    const secret = newSigningSecret();
    const result = await deps.db.transaction(async (tx) => {
      const inserted = await insertEndpoint(tx, { url: body.url, events: body.events, secret, createdBy: operator });
      if (inserted.outcome === 'created') {
        await recordAudit(tx, {
          operator,
          action: 'webhook.endpoint.create',
          subject: `webhook-endpoint:${inserted.endpoint.endpointId}`,
          details: { url: body.url, events: body.events },
          requestId: String(req.id),
        });
      }
      return inserted;
    });
    if (result.outcome === 'url_taken') {
      throw new ApiError('conflict', 'an endpoint with this url is registered; delete it first to register it again', {
        data: { endpointId: result.endpointId },
      });
    }
    res.setHeader('Cache-Control', 'no-store');
    res.status(201).json(okEnvelope('created', { ...endpointView(result.endpoint), secret }));
  });

  router.get('/admin/webhook-endpoints', admin, async (req: Request, res: Response) => {
    const query = parse(ListEndpointsQuery, req.query);
    const rows = await listEndpoints(deps.db, query.includeDeleted === 'true');
    res.status(200).json(okEnvelope('ok', { items: rows.map(endpointView) }));
  });

  router.get('/admin/webhook-endpoints/:endpointId', admin, async (req: Request, res: Response) => {
    const row = await findEndpoint(deps.db, endpointIdParam(req));
    if (!row) throw new ApiError('not_found', 'no such webhook endpoint');
    res.status(200).json(okEnvelope('ok', endpointView(row)));
  });

  router.delete('/admin/webhook-endpoints/:endpointId', admin, async (req: Request, res: Response) => {
    const endpointId = endpointIdParam(req);
    const operator = operatorOf(req);
    const deleted = await deps.db.transaction(async (tx) => {
      const row = await deleteEndpoint(tx, endpointId);
      if (row) {
        await recordAudit(tx, {
          operator,
          action: 'webhook.endpoint.delete',
          subject: `webhook-endpoint:${endpointId}`,
          details: { url: row.url },
          requestId: String(req.id),
        });
      }
      return row;
    });
    if (deleted) return void res.status(200).json(okEnvelope('deleted', endpointView(deleted)));
    const existing = await findEndpoint(deps.db, endpointId);
    if (!existing) throw new ApiError('not_found', 'no such webhook endpoint');
    res.status(200).json(okEnvelope('already deleted', endpointView(existing)));
  });

  router.post('/admin/webhook-endpoints/:endpointId/enable', admin, async (req: Request, res: Response) => {
    const endpointId = endpointIdParam(req);
    const operator = operatorOf(req);
    const enabled = await deps.db.transaction(async (tx) => {
      const row = await enableEndpoint(tx, endpointId);
      if (row) {
        await recordAudit(tx, {
          operator,
          action: 'webhook.endpoint.enable',
          subject: `webhook-endpoint:${endpointId}`,
          details: {},
          requestId: String(req.id),
        });
      }
      return row;
    });
    if (enabled) return void res.status(200).json(okEnvelope('enabled', endpointView(enabled)));
    const existing = await findEndpoint(deps.db, endpointId);
    if (!existing) throw new ApiError('not_found', 'no such webhook endpoint');
    if (existing.status === 'deleted') throw new ApiError('invalid_state', 'a deleted endpoint cannot be enabled; register it again');
    res.status(200).json(okEnvelope('already active', endpointView(existing)));
  });

  router.get('/admin/webhook-deliveries', admin, async (req: Request, res: Response) => {
    const query = parse(ListDeliveriesQuery, req.query);
    const filter = {
      endpointId: query.endpointId?.toLowerCase() ?? null,
      status: query.status ?? null,
      withdrawOrderId: query.withdrawOrderId?.toLowerCase() ?? null,
    };
    let beforeId: bigint | null = null;
    if (query.cursor !== undefined) {
      const [id] = decodeCursor('webhook-deliveries', filter, query.cursor);
      if (!id || !/^\d{1,19}$/.test(id)) throw new ApiError('invalid_request', 'cursor: is not a cursor');
      beforeId = BigInt(id);
    }
    const rows = await listDeliveries(deps.db, filter, beforeId, query.limit + 1);
    const page = rows.slice(0, query.limit);
    const last = page.at(-1);
    const nextCursor = rows.length > query.limit && last ? encodeCursor('webhook-deliveries', filter, [last.deliveryId.toString()]) : null;
    res.status(200).json(okEnvelope('ok', { items: page.map(deliveryView), nextCursor }));
  });

  router.post('/admin/webhook-deliveries/:deliveryId/retry', admin, async (req: Request, res: Response) => {
    const id = String(req.params.deliveryId);
    if (!/^\d{1,19}$/.test(id) || BigInt(id) > INT8_MAX) throw new ApiError('not_found', 'no such delivery');
    const operator = operatorOf(req);
    const result = await deps.db.transaction(async (tx) => {
      const retried = await retryDelivery(tx, BigInt(id));
      if (retried.outcome === 'retrying') {
        await recordAudit(tx, {
          operator,
          action: 'webhook.delivery.retry',
          subject: `webhook-delivery:${id}`,
          details: { endpointId: retried.delivery.endpointId, eventId: retried.delivery.eventId },
          requestId: String(req.id),
        });
      }
      return retried;
    });
    if (result.outcome === 'not_found') throw new ApiError('not_found', 'no such delivery');
    if (result.outcome === 'endpoint_deleted') throw new ApiError('invalid_state', 'its endpoint is deleted');
    res.status(200).json(okEnvelope('retrying', deliveryView(result.delivery)));
  });

  return router;
}
