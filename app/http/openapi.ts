// The OpenAPI document (GET /openapi.json), generated from the zod schemas that validate the
// requests. Each group of routes is described by an OpenApiExtension next to its routes; this file
// lists them (OPENAPI_EXTENSIONS) and describes the core routes itself. Adding a route: describe it
// in its module's extension (or add an extension here); test/openapiRoutes.test.ts fails when
// express serves a route the document does not have, and `npm run lint:openapi` lints the result.
import { OpenApiGeneratorV3, OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { AccountStatusSchema, CreateAccountSchema, CreditSchema } from '../admin/accountRoutes.ts';
import { consoleOpenApi, consoleScreensOpenApi } from '../admin/consoleOpenApi.ts';
import { adminReviewOpenApi, dashboardOpenApi } from '../admin/adminOpenApi.ts';
import { clientAccountsOpenApi } from '../balance/clientAccountsOpenApi.ts';
import { CallbackSchema, SubmitRequestSchema } from '../gateway/gatewayRoutes.ts';
import { webhooksOpenApi } from '../webhooks/webhooksOpenApi.ts';
import { withdrawClientOpenApi } from '../withdraw/withdrawOpenApi.ts';
import { WithdrawOrderView, WithdrawRequestSchema } from '../withdraw/withdrawSchemas.ts';
import { ALWAYS, AnyData, errors, IDEMPOTENCY_HEADERS, json, okResponse, SECURITY, type OpenApiExtension } from './openapiShapes.ts';
import { z } from './zod.ts';

export type { OpenApiExtension } from './openapiShapes.ts';

export const AccountView = z
  .object({
    accountId: z.string().uuid(),
    userId: z.string(),
    currency: z.string(),
    status: z.enum(['active', 'frozen', 'closed']),
    balance: z.string().openapi({ example: '100.00' }),
    available: z.string().openapi({ example: '80.00' }),
    reserved: z.string().openapi({ example: '20.00' }),
  })
  .openapi('Account');

const TAGS = [
  { name: 'withdrawals', description: 'Create withdrawals, one or in bulk, and follow them' },
  { name: 'accounts', description: 'A user’s wallets: balances and statements' },
  { name: 'gateway', description: 'The platform’s internal submit API and the payout provider’s callbacks' },
  { name: 'admin', description: 'Operators: wallets, deposits, limits, manual review, reconciliation breaks' },
  { name: 'webhooks', description: 'Outgoing events: endpoints, deliveries, replays' },
  { name: 'dashboard', description: 'The job dashboard and the JSON it reads' },
  { name: 'console', description: 'The operations console: operators, sessions' },
  { name: 'operations', description: 'Liveness, readiness, metrics, this document' },
];

const withdrawOrderId = z.object({ withdrawOrderId: z.string().uuid() });
const accountId = z.object({ accountId: z.string().uuid() });

function withdrawCore(registry: OpenAPIRegistry): void {
  registry.registerPath({
    method: 'post',
    path: '/withdraw',
    operationId: 'createWithdraw',
    tags: ['withdrawals'],
    summary: 'Create a withdraw order (the amount is reserved; the rest is asynchronous)',
    security: SECURITY.user,
    request: { headers: IDEMPOTENCY_HEADERS, body: json(WithdrawRequestSchema) },
    responses: {
      202: {
        ...okResponse(
          'accepted (or a stored reply replayed, with Idempotent-Replayed: true)',
          z.object({ withdrawOrderId: z.string().uuid(), transactionId: z.string().uuid() }),
        ),
        headers: { 'Idempotent-Replayed': { description: '"true" on a replay', schema: { type: 'string', enum: ['true'] } } },
      },
      ...errors(400, 401, 403, 404, 409, 422, 429, ...ALWAYS, 503),
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/withdraw/{withdrawOrderId}',
    operationId: 'getWithdraw',
    tags: ['withdrawals'],
    summary: 'A withdraw order (long-poll with waitMs)',
    security: SECURITY.userOrAdmin,
    request: {
      params: withdrawOrderId,
      query: z.object({
        waitMs: z.number().int().min(0).max(30_000).optional().openapi({ description: 'wait up to this long for a change' }),
        status: z.string().optional().openapi({ description: 'wait while the order is in this status (default: its current one)' }),
      }),
    },
    responses: { 200: okResponse('the order', WithdrawOrderView), ...errors(400, 401, 404, ...ALWAYS, 503) },
  });
}

function adminAccounts(registry: OpenAPIRegistry): void {
  const tags = ['admin'];
  registry.registerPath({
    method: 'post',
    path: '/admin/accounts',
    operationId: 'createAccount',
    tags,
    summary: 'Create a wallet account',
    security: SECURITY.admin,
    request: { body: json(CreateAccountSchema) },
    responses: { 201: okResponse('created', AccountView), ...errors(400, 401, ...ALWAYS, 503) },
  });
  registry.registerPath({
    method: 'get',
    path: '/admin/accounts/{accountId}',
    operationId: 'getAccount',
    tags,
    summary: 'Read a wallet',
    security: SECURITY.admin,
    request: { params: accountId },
    responses: { 200: okResponse('the account', AccountView), ...errors(401, 404, ...ALWAYS, 503) },
  });
  registry.registerPath({
    method: 'post',
    path: '/admin/accounts/{accountId}/credits',
    operationId: 'creditAccount',
    tags,
    summary: 'Credit a wallet (idempotent by transactionId)',
    security: SECURITY.admin,
    request: { params: accountId, body: json(CreditSchema) },
    responses: {
      200: okResponse('credited (or replayed, with Idempotent-Replayed: true)', AccountView.extend({ transactionId: z.string().uuid() })),
      ...errors(400, 401, 404, 422, ...ALWAYS, 503),
    },
  });
  registry.registerPath({
    method: 'post',
    path: '/admin/accounts/{accountId}/status',
    operationId: 'setAccountStatus',
    tags,
    summary: 'Freeze, close or reactivate a wallet',
    security: SECURITY.admin,
    request: { params: accountId, body: json(AccountStatusSchema) },
    responses: { 200: okResponse('updated', AccountView), ...errors(400, 401, 404, ...ALWAYS, 503) },
  });
}

function gateway(registry: OpenAPIRegistry): void {
  registry.registerPath({
    method: 'post',
    path: '/withdraw/submit',
    operationId: 'submitWithdraw',
    tags: ['gateway'],
    summary: 'Submit a withdrawal to the payment system (internal, idempotent by transactionId)',
    security: SECURITY.internal,
    request: { body: json(SubmitRequestSchema) },
    responses: {
      202: okResponse('accepted', z.object({ transactionId: z.string(), status: z.string() })),
      ...errors(400, 401, 404, 409, ...ALWAYS, 503),
    },
  });
  registry.registerPath({
    method: 'post',
    path: '/withdraw/notify',
    operationId: 'notifyWithdraw',
    tags: ['gateway'],
    summary: 'Payout provider callback (X-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">)',
    security: SECURITY.none,
    request: {
      headers: z.object({ 'X-Signature': z.string().openapi({ example: 't=1767225600,v1=5d41402abc4b2a76b9719d911017c592' }) }),
      body: json(CallbackSchema),
    },
    responses: {
      200: okResponse('stored, or a duplicate', z.object({ eventId: z.string() })),
      ...errors(400, 401, ...ALWAYS, 503),
    },
  });
}

function operations(registry: OpenAPIRegistry): void {
  const tags = ['operations'];
  const statusData = AnyData;
  registry.registerPath({
    method: 'get',
    path: '/healthz',
    operationId: 'healthz',
    tags,
    summary: 'The process is up',
    security: SECURITY.none,
    responses: { 200: okResponse('up', statusData), ...errors(...ALWAYS) },
  });
  registry.registerPath({
    method: 'get',
    path: '/readyz',
    operationId: 'readyz',
    tags,
    summary: 'Both databases reachable, migrations and functions current',
    security: SECURITY.none,
    responses: { 200: okResponse('ready', statusData), ...errors(...ALWAYS, 503) },
  });
  registry.registerPath({
    method: 'get',
    path: '/metrics',
    operationId: 'metrics',
    tags,
    summary: 'Prometheus metrics (with METRICS_TOKEN set, that bearer token is required)',
    security: [{}, { metricsToken: [] }],
    responses: {
      200: { description: 'Prometheus text exposition', content: { 'text/plain': { schema: z.string() } } },
      ...errors(401, ...ALWAYS),
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/openapi.json',
    operationId: 'openapi',
    tags,
    summary: 'This document',
    security: SECURITY.none,
    responses: { 200: { description: 'the OpenAPI document', content: { 'application/json': { schema: AnyData } } }, ...errors(...ALWAYS) },
  });
}

/** Every group of routes the web process serves, described. */
export const OPENAPI_EXTENSIONS: readonly OpenApiExtension[] = [
  withdrawCore,
  withdrawClientOpenApi,
  clientAccountsOpenApi,
  gateway,
  adminAccounts,
  adminReviewOpenApi,
  webhooksOpenApi,
  dashboardOpenApi,
  consoleOpenApi,
  consoleScreensOpenApi,
  operations,
];

export function buildOpenApiDocument(extensions: readonly OpenApiExtension[] = []) {
  const registry = new OpenAPIRegistry();
  registry.registerComponent('securitySchemes', 'userJwt', {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
    description: 'HS256 with AUTH_JWT_SECRET; sub is the user id; exp required',
  });
  registry.registerComponent('securitySchemes', 'adminToken', {
    type: 'http',
    scheme: 'bearer',
    description: 'ADMIN_TOKEN (or a named one)',
  });
  registry.registerComponent('securitySchemes', 'internalToken', { type: 'http', scheme: 'bearer', description: 'INTERNAL_TOKEN' });
  registry.registerComponent('securitySchemes', 'metricsToken', { type: 'http', scheme: 'bearer', description: 'METRICS_TOKEN' });
  registry.registerComponent('securitySchemes', 'consoleSession', {
    type: 'apiKey',
    in: 'cookie',
    name: '__Host-withdraw_console',
    description: 'a console session (POST /admin/console/api/login); unsafe methods also send X-CSRF-Token',
  });
  for (const extend of [...OPENAPI_EXTENSIONS, ...extensions]) extend(registry);

  const document = new OpenApiGeneratorV3(registry.definitions).generateDocument({
    openapi: '3.0.3',
    info: {
      title: 'Withdraw system',
      version: '1.0.0',
      description:
        'Payouts: withdrawals (one or in bulk), balances and statements, outgoing signed events. Every JSON reply is the envelope ' +
        '{code, msg, data}; money is a decimal string in replies and a JSON number or decimal string in requests.',
      license: { name: 'Proprietary', url: 'https://opensource.org/licenses' },
    },
    servers: [{ url: '/', description: 'this web process' }],
    tags: TAGS,
  });
  return fixNullables(document);
}

/**
 * OpenAPI 3.0 has no null type: `nullable` qualifies a schema that has a `type`. The generator
 * writes a nullable union as anyOf [..., {nullable: true}] and z.null()/z.unknown() as a bare
 * {nullable: true}, which 3.0 does not allow; here the first becomes a union of nullable members,
 * the second a nullable object (z.null(): a field that is always null), or any value.
 */
function fixNullables<T>(node: T): T {
  if (Array.isArray(node)) return node.map(fixNullables) as T;
  if (node === null || typeof node !== 'object') return node;
  const entries = Object.entries(node as Record<string, unknown>).map(([key, value]) => [key, fixNullables(value)] as const);
  const schema: Record<string, unknown> = Object.fromEntries(entries);
  const anyOf = schema.anyOf;
  if (Array.isArray(anyOf)) {
    const isBareNullable = (s: unknown) => JSON.stringify(s) === '{"nullable":true}';
    if (anyOf.some(isBareNullable)) {
      const rest = anyOf.filter((s) => !isBareNullable(s)).map((s) => ({ ...(s as object), nullable: true }));
      return { ...schema, anyOf: rest } as T;
    }
  }
  for (const [key, value] of Object.entries(schema)) {
    if (key !== 'anyOf' && JSON.stringify(value) === '{"nullable":true}' && key !== 'additionalProperties') {
      schema[key] = { type: 'object', nullable: true, description: 'null' };
    } else if (key === 'additionalProperties' && JSON.stringify(value) === '{"nullable":true}') {
      schema[key] = {};
    }
  }
  return schema as T;
}
