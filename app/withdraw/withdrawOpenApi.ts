// The client API of withdrawals in the OpenAPI document: the listing and bulk payouts.
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { ALWAYS, errors, IDEMPOTENCY_HEADERS, json, okResponse, SECURITY } from '../http/openapiShapes.ts';
import { z } from '../http/zod.ts';
import { BatchReplyView, BatchRequestSchema, BatchStatusView } from './withdrawBatch.ts';
import { ListWithdrawsQuery, WithdrawListView } from './withdrawSchemas.ts';

export function withdrawClientOpenApi(registry: OpenAPIRegistry): void {
  const tags = ['withdrawals'];
  registry.registerPath({
    method: 'get',
    path: '/withdraws',
    operationId: 'listWithdraws',
    tags,
    summary: 'The user’s withdraw orders (an admin: anyone’s), newest first, keyset-paged',
    description:
      'Newest first by creation time, then id. Page with `nextCursor` until it is null; a cursor keeps its place while new ' +
      'orders arrive (they come before it, so no order is served twice or skipped) and only works with the filters it came from.',
    security: SECURITY.userOrAdmin,
    request: { query: ListWithdrawsQuery.innerType() },
    responses: { 200: okResponse('a page of orders', WithdrawListView), ...errors(400, 401, ...ALWAYS, 503) },
  });
  registry.registerPath({
    method: 'post',
    path: '/withdraw/batch',
    operationId: 'createWithdrawBatch',
    tags,
    summary: 'Bulk payout: up to 1,000 withdrawals under one idempotency key, each accepted or refused on its own',
    description:
      'Each item gets the code POST /withdraw would give it (0 accepted). The whole reply is stored with the key and replayed ' +
      'byte for byte (Idempotent-Replayed: true). A batch refused as a whole (400: no items, more than 1,000, a clientReference ' +
      'missing or repeated) writes nothing. The body may be up to HTTP_BATCH_BODY_SIZE_MAX_BYTES.',
    security: SECURITY.user,
    request: { headers: IDEMPOTENCY_HEADERS, body: json(BatchRequestSchema) },
    responses: {
      202: {
        ...okResponse('the items, each with its code (or the stored reply, replayed)', BatchReplyView),
        headers: { 'Idempotent-Replayed': { description: '"true" on a replay', schema: { type: 'string', enum: ['true'] } } },
      },
      ...errors(400, 401, 409, 422, 429, ...ALWAYS, 503),
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/withdraw/batch/{batchId}',
    operationId: 'getWithdrawBatch',
    tags,
    summary: 'A bulk payout: each item with its order and the order’s current status',
    security: SECURITY.userOrAdmin,
    request: { params: z.object({ batchId: z.string().uuid() }) },
    responses: { 200: okResponse('the batch', BatchStatusView), ...errors(401, 404, ...ALWAYS, 503) },
  });
}
