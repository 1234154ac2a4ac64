// The operations console's routes in the OpenAPI document: its pages, its session API (a cookie
// session; unsafe methods also carry X-CSRF-Token), the operators API, by admin token and by console
// session, and the screens' JSON (orders, review, approvals, jobs, breaks, provider calls, outboxes,
// callbacks, accounts, audit), each with the least role it needs (docs/console.md).
import type { OpenAPIRegistry, RouteConfig } from '@asteasolutions/zod-to-openapi';
import { ALWAYS, AnyData, errors, json, okResponse, SECURITY } from '../http/openapiShapes.ts';
import { z } from '../http/zod.ts';
import { ApproveBody, CreditRequestBody, ListQuery as ApprovalsQuery, RejectBody } from './approvalRoutes.ts';
import { LoginBody, PasswordChangeBody } from './consoleAuthRoutes.ts';
import { BulkRetryBody, CancelBody, ListQuery as JobsQuery, RescheduleBody } from './consoleJobRoutes.ts';
import { AccountsQuery, AuditQuery, BreaksQuery, CallsQuery, OutboxQuery, ResolveBreakBody } from './consoleOpsRoutes.ts';
import { OverrideBody, ResolveBody, ReviewQuery, SearchQuery } from './consoleOrderRoutes.ts';
import { CreateOperatorSchema, operatorsOpenApi, SetPasswordSchema, UpdateOperatorSchema } from './operatorRoutes.ts';

const Session = z.object({ login: z.string(), csrfToken: z.string(), expiresAt: z.string().datetime() }).passthrough();

export function consoleOpenApi(registry: OpenAPIRegistry): void {
  operatorsOpenApi(registry);
  const tags = ['console'];
  const security = SECURITY.consoleSession;
  const base = '/admin/console/api';
  registry.registerPath({
    method: 'post',
    path: `${base}/login`,
    operationId: 'consoleLogin',
    tags,
    summary: 'Sign in: sets the session cookie; the reply carries the CSRF token',
    security: SECURITY.none,
    request: { body: json(LoginBody.openapi('ConsoleLoginRequest')) },
    responses: { 200: okResponse('signed in', Session), ...errors(400, 401, 429, ...ALWAYS, 503) },
  });
  registry.registerPath({
    method: 'get',
    path: `${base}/session`,
    operationId: 'consoleSession',
    tags,
    summary: 'The signed-in operator and the session',
    security,
    responses: { 200: okResponse('the session', Session), ...errors(401, ...ALWAYS, 503) },
  });
  registry.registerPath({
    method: 'post',
    path: `${base}/logout`,
    operationId: 'consoleLogout',
    tags,
    summary: 'Sign out: the session ends',
    security,
    responses: { 200: okResponse('signed out', z.null()), ...errors(401, ...ALWAYS, 503) },
  });
  registry.registerPath({
    method: 'post',
    path: `${base}/session/password`,
    operationId: 'consoleChangePassword',
    tags,
    summary: 'Change one’s own password (the other sessions end)',
    security,
    request: { body: json(PasswordChangeBody.openapi('ConsolePasswordChangeRequest')) },
    responses: { 200: okResponse('password changed', AnyData), ...errors(400, 401, 403, ...ALWAYS, 503) },
  });
  const operatorId = z.object({ operatorId: z.string().regex(/^\d+$/) });
  registry.registerPath({
    method: 'get',
    path: `${base}/operators`,
    operationId: 'consoleListOperators',
    tags,
    summary: 'List operators (console admins)',
    security,
    responses: { 200: okResponse('the operators', AnyData), ...errors(401, 403, ...ALWAYS, 503) },
  });
  registry.registerPath({
    method: 'post',
    path: `${base}/operators`,
    operationId: 'consoleCreateOperator',
    tags,
    summary: 'Create an operator (console admins)',
    security,
    request: { body: json(CreateOperatorSchema) },
    responses: { 201: okResponse('created', AnyData), ...errors(400, 401, 403, 409, ...ALWAYS, 503) },
  });
  registry.registerPath({
    method: 'patch',
    path: `${base}/operators/{operatorId}`,
    operationId: 'consoleUpdateOperator',
    tags,
    summary: 'Change an operator (console admins)',
    security,
    request: { params: operatorId, body: json(UpdateOperatorSchema) },
    responses: { 200: okResponse('updated', AnyData), ...errors(400, 401, 403, 404, ...ALWAYS, 503) },
  });
  registry.registerPath({
    method: 'post',
    path: `${base}/operators/{operatorId}/password`,
    operationId: 'consoleSetOperatorPassword',
    tags,
    summary: 'Set an operator’s password (console admins)',
    security,
    request: { params: operatorId, body: json(SetPasswordSchema) },
    responses: { 200: okResponse('password set', AnyData), ...errors(400, 401, 403, 404, ...ALWAYS, 503) },
  });
}

type ConsoleRoute = Readonly<{
  method: 'get' | 'post';
  /** below /admin/console/api */
  path: string;
  operationId: string;
  summary: string;
  role: 'viewer' | 'operator' | 'approver';
  params?: z.AnyZodObject;
  query?: z.ZodTypeAny;
  body?: z.ZodTypeAny;
  /** the 4xx it answers besides 401 and 403 */
  refusals?: readonly number[];
}>;

const approvalId = z.object({ approvalId: z.string().regex(/^\d+$/) });
const jobId = z.object({ jobId: z.string().regex(/^\d+$/) });
const breakId = z.object({ breakId: z.string().regex(/^\d+$/) });
const orderId = z.object({ orderId: z.string().uuid() });
const accountId = z.object({ accountId: z.string().uuid() });

/** The screens' JSON, as served by approvalRoutes, consoleOrderRoutes, consoleJobRoutes and consoleOpsRoutes. */
const CONSOLE_SCREENS: readonly ConsoleRoute[] = [
  {
    method: 'get',
    path: '/overview',
    operationId: 'consoleOverview',
    summary: 'Overview: orders by status, queues, rates',
    role: 'viewer',
  },
  {
    method: 'get',
    path: '/orders',
    operationId: 'consoleSearchOrders',
    summary: 'Search orders (id, transaction id, user, account), keyset-paged',
    role: 'viewer',
    query: SearchQuery,
    refusals: [400],
  },
  {
    method: 'get',
    path: '/orders/{orderId}',
    operationId: 'consoleGetOrder',
    summary: 'An order with its timeline across both databases',
    role: 'viewer',
    params: orderId,
    refusals: [400, 404],
  },
  {
    method: 'get',
    path: '/orders/{orderId}/provider',
    operationId: 'consoleOrderProvider',
    summary: 'The provider’s current answer for an order',
    role: 'viewer',
    params: orderId,
    refusals: [400, 404, 503],
  },
  {
    method: 'get',
    path: '/review',
    operationId: 'consoleReviewQueue',
    summary: 'Manual orders waiting for a decision, oldest first',
    role: 'viewer',
    query: ReviewQuery,
    refusals: [400],
  },
  {
    method: 'post',
    path: '/orders/{orderId}/resolve',
    operationId: 'consoleResolveOrder',
    summary: 'Resolve a manual order as success or failed (through the manual review service)',
    role: 'operator',
    params: orderId,
    body: ResolveBody,
    refusals: [400, 404, 409],
  },
  {
    method: 'post',
    path: '/orders/{orderId}/override',
    operationId: 'consoleOverrideOrder',
    summary: 'Ask for an override against the provider’s answer (dual control: an approval request)',
    role: 'operator',
    params: orderId,
    body: OverrideBody,
    refusals: [400, 404, 409],
  },
  {
    method: 'get',
    path: '/approvals',
    operationId: 'consoleListApprovals',
    summary: 'Dual-control requests, pending or decided',
    role: 'viewer',
    query: ApprovalsQuery,
    refusals: [400],
  },
  {
    method: 'get',
    path: '/approvals/{approvalId}',
    operationId: 'consoleGetApproval',
    summary: 'A dual-control request',
    role: 'viewer',
    params: approvalId,
    refusals: [400, 404],
  },
  {
    method: 'post',
    path: '/accounts/{accountId}/credits',
    operationId: 'consoleRequestCredit',
    summary: 'Ask for a credit to a wallet (dual control: an approval request)',
    role: 'operator',
    params: accountId,
    body: CreditRequestBody,
    refusals: [400, 404],
  },
  {
    method: 'post',
    path: '/approvals/{approvalId}/approve',
    operationId: 'consoleApprove',
    summary: 'Approve a request (not one’s own); the action runs in the approval’s transaction',
    role: 'approver',
    params: approvalId,
    body: ApproveBody,
    refusals: [400, 404, 409],
  },
  {
    method: 'post',
    path: '/approvals/{approvalId}/reject',
    operationId: 'consoleReject',
    summary: 'Reject a request, with a note',
    role: 'approver',
    params: approvalId,
    body: RejectBody,
    refusals: [400, 404, 409],
  },
  {
    method: 'post',
    path: '/approvals/{approvalId}/cancel',
    operationId: 'consoleCancelApproval',
    summary: 'Cancel one’s own pending request',
    role: 'operator',
    params: approvalId,
    refusals: [400, 404, 409],
  },
  {
    method: 'get',
    path: '/jobs',
    operationId: 'consoleListJobs',
    summary: 'Jobs by task and state, keyset-paged',
    role: 'viewer',
    query: JobsQuery,
    refusals: [400],
  },
  {
    method: 'get',
    path: '/jobs/{jobId}',
    operationId: 'consoleGetJob',
    summary: 'A job',
    role: 'viewer',
    params: jobId,
    refusals: [400, 404],
  },
  {
    method: 'post',
    path: '/jobs/{jobId}/retry',
    operationId: 'consoleRetryJob',
    summary: 'Retry a job now',
    role: 'operator',
    params: jobId,
    refusals: [400, 404, 409],
  },
  {
    method: 'post',
    path: '/jobs/{jobId}/cancel',
    operationId: 'consoleCancelJob',
    summary: 'Cancel a job, with a reason',
    role: 'operator',
    params: jobId,
    body: CancelBody,
    refusals: [400, 404, 409],
  },
  {
    method: 'post',
    path: '/jobs/{jobId}/reschedule',
    operationId: 'consoleRescheduleJob',
    summary: 'Run a job at another time (at most 30 days ahead)',
    role: 'operator',
    params: jobId,
    body: RescheduleBody,
    refusals: [400, 404, 409],
  },
  {
    method: 'post',
    path: '/jobs/retry',
    operationId: 'consoleRetryJobs',
    summary: 'Retry several jobs (dual control: an approval request)',
    role: 'operator',
    body: BulkRetryBody,
    refusals: [400],
  },
  { method: 'get', path: '/cron', operationId: 'consoleCron', summary: 'The worker’s cron items and when each last ran', role: 'viewer' },
  {
    method: 'get',
    path: '/breaks',
    operationId: 'consoleListBreaks',
    summary: 'Reconciliation breaks by state, category and age, keyset-paged',
    role: 'viewer',
    query: BreaksQuery,
    refusals: [400],
  },
  {
    method: 'post',
    path: '/breaks/{breakId}/resolve',
    operationId: 'consoleResolveBreak',
    summary: 'Close a reconciliation break with a note',
    role: 'operator',
    params: breakId,
    body: ResolveBreakBody,
    refusals: [400, 404, 409],
  },
  {
    method: 'get',
    path: '/provider-calls',
    operationId: 'consoleProviderCalls',
    summary: 'Calls to the payout provider, newest first',
    role: 'viewer',
    query: CallsQuery,
    refusals: [400],
  },
  {
    method: 'get',
    path: '/outbox',
    operationId: 'consoleOutbox',
    summary: 'What waits in an outbox (balance or ledger)',
    role: 'viewer',
    query: OutboxQuery,
    refusals: [400],
  },
  {
    method: 'get',
    path: '/callbacks',
    operationId: 'consoleCallbacks',
    summary: 'Provider callbacks waiting to be applied',
    role: 'viewer',
  },
  {
    method: 'get',
    path: '/accounts',
    operationId: 'consoleAccounts',
    summary: 'A user’s wallets',
    role: 'viewer',
    query: AccountsQuery,
    refusals: [400],
  },
  {
    method: 'get',
    path: '/accounts/{accountId}',
    operationId: 'consoleAccount',
    summary: 'A wallet with its recent orders and ledger balance',
    role: 'viewer',
    params: accountId,
    refusals: [400, 404],
  },
  {
    method: 'get',
    path: '/audit',
    operationId: 'consoleAudit',
    summary: 'The audit trail, newest first',
    role: 'viewer',
    query: AuditQuery,
    refusals: [400],
  },
];

/** The console's pages and its screens' JSON. */
export function consoleScreensOpenApi(registry: OpenAPIRegistry): void {
  const tags = ['console'];
  const html = { 'text/html': { schema: z.string() } };
  registry.registerPath({
    method: 'get',
    path: '/admin/login',
    operationId: 'consoleLoginPage',
    tags,
    summary: 'The console’s sign-in page (HTML)',
    security: SECURITY.none,
    responses: { 200: { description: 'the page', content: html }, ...errors(...ALWAYS) },
  });
  registry.registerPath({
    method: 'get',
    path: '/admin/console/assets/{name}',
    operationId: 'consoleAsset',
    tags,
    summary: 'A script or style sheet of the console',
    security: SECURITY.none,
    request: { params: z.object({ name: z.string() }) },
    responses: {
      200: { description: 'the asset', content: { 'text/css': { schema: z.string() }, 'text/javascript': { schema: z.string() } } },
      ...errors(404, ...ALWAYS),
    },
  });
  for (const route of CONSOLE_SCREENS) {
    const request: NonNullable<RouteConfig['request']> = {};
    if (route.params) request.params = route.params;
    if (route.query) request.query = route.query as z.AnyZodObject;
    if (route.body) request.body = json(route.body);
    registry.registerPath({
      method: route.method,
      path: `/admin/console/api${route.path}`,
      operationId: route.operationId,
      tags,
      summary: `${route.summary} (role ${route.role} or above)`,
      security: SECURITY.consoleSession,
      request,
      responses: { 200: okResponse('done', AnyData), ...errors(...(route.refusals ?? []), 401, 403, ...ALWAYS, 503) },
    });
  }
}
