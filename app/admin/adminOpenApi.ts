// The operators' routes in the OpenAPI document: manual review, breaks, limits, and the job
// dashboard with the JSON it reads.
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { ALWAYS, AnyData, errors, json, okResponse, SECURITY } from '../http/openapiShapes.ts';
import { z } from '../http/zod.ts';
import { CURRENCIES } from '../money/money.ts';
import { WithdrawOrderView } from '../withdraw/withdrawSchemas.ts';
import { WITHDRAW_STATUSES } from '../withdraw/withdrawStateMachine.ts';
import { JOB_STATES } from './dashboardQueries.ts';
import { LimitsSchema, ResolveBreakSchema, ResolveSchema } from './reviewRoutes.ts';

const withdrawOrderId = z.object({ withdrawOrderId: z.string().uuid() });
const limit = (max: number) => z.number().int().min(1).max(max).optional().openapi({ description: 'default 100' });
const ReviewedOrder = WithdrawOrderView.extend({ userId: z.string(), evidence: AnyData }).openapi('ReviewedOrder');
const Limits = z.object({ orderMax: z.string().nullable(), dailyMax: z.string().nullable() });

export function adminReviewOpenApi(registry: OpenAPIRegistry): void {
  const tags = ['admin'];
  const security = SECURITY.admin;
  registry.registerPath({
    method: 'get',
    path: '/admin/withdraws',
    operationId: 'listReviewOrders',
    tags,
    summary: 'Orders in one status (default manual) with their evidence: history, provider attempts, queries, callbacks',
    security,
    request: { query: z.object({ status: z.enum(WITHDRAW_STATUSES).optional(), limit: limit(500) }) },
    responses: { 200: okResponse('the orders', z.object({ orders: z.array(ReviewedOrder) })), ...errors(400, 401, ...ALWAYS, 503) },
  });
  registry.registerPath({
    method: 'get',
    path: '/admin/withdraws/{withdrawOrderId}',
    operationId: 'getReviewOrder',
    tags,
    summary: 'One order with its evidence',
    security,
    request: { params: withdrawOrderId },
    responses: { 200: okResponse('the order', ReviewedOrder), ...errors(401, 404, ...ALWAYS, 503) },
  });
  registry.registerPath({
    method: 'post',
    path: '/admin/withdraws/{withdrawOrderId}/resolve',
    operationId: 'resolveWithdraw',
    tags,
    summary: 'Resolve a manual order as success or failed (failed asks the provider first), audited',
    security,
    request: { params: withdrawOrderId, body: json(ResolveSchema) },
    responses: {
      200: okResponse(
        'resolved (or already resolved the same way)',
        z.object({
          withdrawOrderId: z.string().uuid(),
          transactionId: z.string().uuid(),
          status: z.enum(WITHDRAW_STATUSES),
          operator: z.string(),
          providerStatus: z.string().nullable(),
        }),
      ),
      ...errors(400, 401, 404, 409, 422, ...ALWAYS, 503),
    },
  });
  registry.registerPath({
    method: 'post',
    path: '/admin/breaks/{breakId}/resolve',
    operationId: 'resolveBreak',
    tags,
    summary: 'Close a reconciliation break with a note, audited',
    security,
    request: { params: z.object({ breakId: z.string().regex(/^\d{1,19}$/) }), body: json(ResolveBreakSchema) },
    responses: {
      200: okResponse('resolved', z.object({ breakId: z.string(), operator: z.string() })),
      ...errors(400, 401, 404, ...ALWAYS, 503),
    },
  });
  registry.registerPath({
    method: 'put',
    path: '/admin/accounts/{accountId}/limits',
    operationId: 'setAccountLimits',
    tags,
    summary: 'An account’s withdraw limits (a field left out keeps its value; null clears it)',
    security,
    request: { params: z.object({ accountId: z.string().uuid() }), body: json(LimitsSchema) },
    responses: {
      200: okResponse('the limits in force', Limits.extend({ accountId: z.string().uuid() })),
      ...errors(400, 401, 404, ...ALWAYS, 503),
    },
  });
  registry.registerPath({
    method: 'put',
    path: '/admin/limits/{currency}',
    operationId: 'setCurrencyLimits',
    tags,
    summary: 'A currency’s default withdraw limits (replaced as a whole)',
    security,
    request: { params: z.object({ currency: z.enum(CURRENCIES) }), body: json(LimitsSchema) },
    responses: {
      200: okResponse('the limits in force', Limits.extend({ currency: z.enum(CURRENCIES) })),
      ...errors(400, 401, ...ALWAYS, 503),
    },
  });
}

export function dashboardOpenApi(registry: OpenAPIRegistry): void {
  const tags = ['dashboard'];
  const security = SECURITY.admin;
  registry.registerPath({
    method: 'get',
    path: '/admin',
    operationId: 'consolePage',
    tags,
    summary: 'The operations console (an HTML page; /admin/ too); without a console session, 303 to /admin/login',
    security: SECURITY.none,
    responses: {
      200: { description: 'the page', content: { 'text/html': { schema: z.string() } } },
      303: { description: 'no live console session: to the sign-in page' },
      ...errors(...ALWAYS),
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/admin/api/overview',
    operationId: 'dashboardOverview',
    tags,
    summary: 'Outbox lag, callbacks pending, open orders, manual reviews, open breaks, jobs by task and state',
    security,
    responses: { 200: okResponse('the overview', AnyData), ...errors(401, ...ALWAYS, 503) },
  });
  registry.registerPath({
    method: 'get',
    path: '/admin/api/jobs',
    operationId: 'dashboardJobs',
    tags,
    summary: 'Jobs in one state (default failed) with their error and payload',
    security,
    request: { query: z.object({ state: z.enum(JOB_STATES).optional(), limit: limit(500) }) },
    responses: { 200: okResponse('the jobs', AnyData), ...errors(400, 401, ...ALWAYS, 503) },
  });
  registry.registerPath({
    method: 'post',
    path: '/admin/api/jobs/retry',
    operationId: 'dashboardRetryJobs',
    tags,
    summary: 'Run jobs again now with their attempts reset, audited',
    security,
    request: {
      body: json(
        z
          .object({
            jobIds: z
              .array(z.string().regex(/^\d{1,19}$/))
              .min(1)
              .max(500),
          })
          .openapi('RetryJobsRequest'),
      ),
    },
    responses: { 200: okResponse('retried', z.object({ retried: z.number().int() })), ...errors(400, 401, ...ALWAYS, 503) },
  });
  registry.registerPath({
    method: 'get',
    path: '/admin/api/breaks',
    operationId: 'dashboardBreaks',
    tags,
    summary: 'Reconciliation breaks, open (default) or resolved',
    security,
    request: { query: z.object({ open: z.enum(['true', 'false']).optional(), limit: limit(500) }) },
    responses: { 200: okResponse('the breaks', AnyData), ...errors(400, 401, ...ALWAYS, 503) },
  });
}
