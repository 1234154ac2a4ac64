// Outgoing events in the OpenAPI document: the operators' endpoints API, and what a receiver gets
// (the event, as a callback of the endpoint's registration).
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { ALWAYS, errors, json, okResponse, SECURITY } from '../http/openapiShapes.ts';
import { z } from '../http/zod.ts';
import { WithdrawOrderView } from '../withdraw/withdrawSchemas.ts';
import { WEBHOOK_EVENT_TYPES } from './webhookQueries.ts';
import {
  CreatedEndpointView,
  CreateEndpointSchema,
  DeliveryView,
  EndpointView,
  ListDeliveriesQuery,
  ListEndpointsQuery,
} from './webhookRoutes.ts';

export const WithdrawEvent = z
  .object({
    eventId: z.string().uuid().openapi({ description: 'unique per event; the same on every retry: de-duplicate on it' }),
    type: z.enum(WEBHOOK_EVENT_TYPES),
    createdAt: z.string().datetime().openapi({ description: 'when the change happened' }),
    data: WithdrawOrderView.extend({
      reversal: z
        .object({ reportedAt: z.string().datetime(), failureCode: z.string().nullable() })
        .optional()
        .openapi({ description: 'withdraw.reversed only: the provider reported the paid payout failed' }),
    }).openapi({ description: 'the order as it was at this change (as GET /withdraw/{id} showed it then)' }),
  })
  .openapi('WithdrawEvent', {
    description:
      'POSTed to each subscribed endpoint, signed X-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" with ' +
      'the endpoint’s secret>. Any 2xx is delivered; anything else (or no answer within WEBHOOK_TIMEOUT_MS) is retried with ' +
      'exponential backoff for at least 72 hours. At least once, in order per order (an order’s next event waits until ' +
      'its previous one was delivered).',
  });

const endpointId = z.object({ endpointId: z.string().uuid() });

export function webhooksOpenApi(registry: OpenAPIRegistry): void {
  const tags = ['webhooks'];
  registry.register('WithdrawEvent', WithdrawEvent);
  registry.registerPath({
    method: 'post',
    path: '/admin/webhook-endpoints',
    operationId: 'createWebhookEndpoint',
    tags,
    summary: 'Register an endpoint for outgoing events; the signing secret is in this reply only',
    security: SECURITY.admin,
    request: { body: json(CreateEndpointSchema) },
    responses: { 201: okResponse('registered', CreatedEndpointView), ...errors(400, 401, 409, ...ALWAYS, 503) },
    callbacks: {
      withdrawEvent: {
        '{$request.body#/url}': {
          post: {
            summary: 'An event, to the registered URL',
            security: [],
            parameters: [{ name: 'X-Signature', in: 'header', required: true, schema: { type: 'string' } }],
            requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/WithdrawEvent' } } } },
            responses: {
              '200': { description: 'any 2xx: delivered' },
              '400': { description: 'any other answer, or none in time: retried later' },
              '500': { description: 'any other answer, or none in time: retried later' },
            },
          },
        },
      },
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/admin/webhook-endpoints',
    operationId: 'listWebhookEndpoints',
    tags,
    summary: 'The endpoints, with their health (never their secrets)',
    security: SECURITY.admin,
    request: { query: ListEndpointsQuery },
    responses: { 200: okResponse('the endpoints', z.object({ items: z.array(EndpointView) })), ...errors(400, 401, ...ALWAYS, 503) },
  });
  registry.registerPath({
    method: 'get',
    path: '/admin/webhook-endpoints/{endpointId}',
    operationId: 'getWebhookEndpoint',
    tags,
    summary: 'One endpoint',
    security: SECURITY.admin,
    request: { params: endpointId },
    responses: { 200: okResponse('the endpoint', EndpointView), ...errors(401, 404, ...ALWAYS, 503) },
  });
  registry.registerPath({
    method: 'delete',
    path: '/admin/webhook-endpoints/{endpointId}',
    operationId: 'deleteWebhookEndpoint',
    tags,
    summary: 'Delete an endpoint: nothing more is sent, its waiting deliveries are cancelled',
    security: SECURITY.admin,
    request: { params: endpointId },
    responses: { 200: okResponse('deleted (or already)', EndpointView), ...errors(401, 404, ...ALWAYS, 503) },
  });
  registry.registerPath({
    method: 'post',
    path: '/admin/webhook-endpoints/{endpointId}/enable',
    operationId: 'enableWebhookEndpoint',
    tags,
    summary: 'Re-enable a disabled endpoint: its waiting deliveries go out now, in order',
    security: SECURITY.admin,
    request: { params: endpointId },
    responses: { 200: okResponse('enabled (or already active)', EndpointView), ...errors(401, 404, 422, ...ALWAYS, 503) },
  });
  registry.registerPath({
    method: 'get',
    path: '/admin/webhook-deliveries',
    operationId: 'listWebhookDeliveries',
    tags,
    summary: 'Deliveries, newest first, keyset-paged',
    security: SECURITY.admin,
    request: { query: ListDeliveriesQuery },
    responses: {
      200: okResponse('a page of deliveries', z.object({ items: z.array(DeliveryView), nextCursor: z.string().nullable() })),
      ...errors(400, 401, ...ALWAYS, 503),
    },
  });
  registry.registerPath({
    method: 'post',
    path: '/admin/webhook-deliveries/{deliveryId}/retry',
    operationId: 'retryWebhookDelivery',
    tags,
    summary: 'Send a delivery again now (delivered, given up or waiting), with a fresh retry horizon',
    security: SECURITY.admin,
    request: { params: z.object({ deliveryId: z.string().regex(/^\d{1,19}$/) }) },
    responses: { 200: okResponse('retrying', DeliveryView), ...errors(401, 404, 422, ...ALWAYS, 503) },
  });
}
