// The OpenAPI document, generated from the zod schemas that validate the requests.
import { OpenApiGeneratorV3, OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { CreateAccountSchema, CreditSchema, AccountStatusSchema } from '../admin/accountRoutes.ts';
import { WithdrawOrderView, WithdrawRequestSchema } from '../withdraw/withdrawSchemas.ts';
import { CallbackSchema, SubmitRequestSchema } from '../gateway/gatewayRoutes.ts';
import { API_ERRORS } from './apiErrors.ts';
import { z } from './zod.ts';

export type OpenApiExtension = (registry: OpenAPIRegistry) => void;

const envelope = <T extends z.ZodTypeAny>(data: T) => z.object({ code: z.number().int(), msg: z.string(), data });

const ErrorEnvelope = z
  .object({
    code: z
      .number()
      .int()
      .openapi({
        description: Object.entries(API_ERRORS)
          .map(([k, v]) => `${v.code} ${k} (HTTP ${v.status})`)
          .join('; '),
      }),
    msg: z.string(),
    data: z.null(),
  })
  .openapi('ErrorEnvelope');

const AccountView = z
  .object({
    accountId: z.string().uuid(),
    userId: z.string(),
    currency: z.string(),
    status: z.string(),
    balance: z.string(),
    available: z.string(),
    reserved: z.string(),
  })
  .openapi('Account');

function errors(...statuses: number[]) {
  return Object.fromEntries(
    statuses.map((status) => [status, { description: 'error', content: { 'application/json': { schema: ErrorEnvelope } } }]),
  );
}

export function buildOpenApiDocument(extensions: readonly OpenApiExtension[] = []) {
  const registry = new OpenAPIRegistry();
  const userAuth = registry.registerComponent('securitySchemes', 'userJwt', { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' });
  const adminAuth = registry.registerComponent('securitySchemes', 'adminToken', { type: 'http', scheme: 'bearer' });
  const idempotencyHeader = z
    .string()
    .uuid()
    .openapi({
      param: { name: 'idempotent-key', in: 'header' },
      description:
        'UUIDv7; Idempotency-Key is accepted as an alias. Replies are kept IDEMPOTENCY_KEY_RETENTION_HOURS (at least 24): a key made ' +
        'longer ago than that (the time inside the UUIDv7) with no stored reply is refused with 422 42206 idempotency_key_expired',
    });

  registry.registerPath({
    method: 'post',
    path: '/withdraw',
    summary: 'Create a withdraw order (async)',
    security: [{ [userAuth.name]: [] }],
    request: {
      headers: z.object({ 'idempotent-key': idempotencyHeader }),
      body: { content: { 'application/json': { schema: WithdrawRequestSchema } } },
    },
    responses: {
      202: {
        description: 'accepted; replays carry Idempotent-Replayed: true',
        content: {
          'application/json': { schema: envelope(z.object({ withdrawOrderId: z.string().uuid(), transactionId: z.string().uuid() })) },
        },
      },
      ...errors(400, 401, 403, 404, 409, 422, 429, 500, 503),
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/withdraw/{withdrawOrderId}',
    summary: 'Withdraw order status (long-poll with waitMs)',
    security: [{ [userAuth.name]: [] }, { [adminAuth.name]: [] }],
    request: {
      params: z.object({ withdrawOrderId: z.string().uuid() }),
      query: z.object({ waitMs: z.number().int().min(0).max(30000).optional(), status: z.string().optional() }),
    },
    responses: {
      200: { description: 'the order', content: { 'application/json': { schema: envelope(WithdrawOrderView) } } },
      ...errors(401, 404),
    },
  });
  registry.registerPath({
    method: 'post',
    path: '/admin/accounts',
    summary: 'Create a wallet account',
    security: [{ [adminAuth.name]: [] }],
    request: { body: { content: { 'application/json': { schema: CreateAccountSchema } } } },
    responses: { 201: { description: 'created', content: { 'application/json': { schema: envelope(AccountView) } } }, ...errors(400, 401) },
  });
  registry.registerPath({
    method: 'post',
    path: '/admin/accounts/{accountId}/credits',
    summary: 'Credit a wallet (idempotent by transactionId)',
    security: [{ [adminAuth.name]: [] }],
    request: { params: z.object({ accountId: z.string().uuid() }), body: { content: { 'application/json': { schema: CreditSchema } } } },
    responses: {
      200: { description: 'credited', content: { 'application/json': { schema: envelope(AccountView) } } },
      ...errors(400, 401, 404, 422),
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/admin/accounts/{accountId}',
    summary: 'Read a wallet',
    security: [{ [adminAuth.name]: [] }],
    request: { params: z.object({ accountId: z.string().uuid() }) },
    responses: {
      200: { description: 'the account', content: { 'application/json': { schema: envelope(AccountView) } } },
      ...errors(401, 404),
    },
  });
  registry.registerPath({
    method: 'post',
    path: '/admin/accounts/{accountId}/status',
    summary: 'Freeze, close or reactivate a wallet',
    security: [{ [adminAuth.name]: [] }],
    request: {
      params: z.object({ accountId: z.string().uuid() }),
      body: { content: { 'application/json': { schema: AccountStatusSchema } } },
    },
    responses: {
      200: { description: 'updated', content: { 'application/json': { schema: envelope(AccountView) } } },
      ...errors(400, 401, 404),
    },
  });
  const internalAuth = registry.registerComponent('securitySchemes', 'internalToken', { type: 'http', scheme: 'bearer' });
  registry.registerPath({
    method: 'post',
    path: '/withdraw/submit',
    summary: 'Submit a withdrawal to the payment system (internal, idempotent by transactionId)',
    security: [{ [internalAuth.name]: [] }],
    request: { body: { content: { 'application/json': { schema: SubmitRequestSchema } } } },
    responses: {
      202: {
        description: 'accepted',
        content: { 'application/json': { schema: envelope(z.object({ transactionId: z.string(), status: z.string() })) } },
      },
      ...errors(400, 401, 404, 409),
    },
  });
  registry.registerPath({
    method: 'post',
    path: '/withdraw/notify',
    summary: 'Payout provider callback (X-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">)',
    request: { headers: z.object({ 'x-signature': z.string() }), body: { content: { 'application/json': { schema: CallbackSchema } } } },
    responses: {
      200: {
        description: 'stored (or duplicate)',
        content: { 'application/json': { schema: envelope(z.object({ eventId: z.string() })) } },
      },
      ...errors(400, 401),
    },
  });
  for (const path of ['/admin/api/overview', '/admin/api/jobs', '/admin/api/breaks']) {
    registry.registerPath({
      method: 'get',
      path,
      security: [{ [adminAuth.name]: [] }],
      responses: { 200: { description: 'dashboard data' }, ...errors(401) },
    });
  }
  registry.registerPath({
    method: 'post',
    path: '/admin/api/jobs/retry',
    summary: 'Run jobs again now with attempts reset',
    security: [{ [adminAuth.name]: [] }],
    request: { body: { content: { 'application/json': { schema: z.object({ jobIds: z.array(z.string()) }) } } } },
    responses: { 200: { description: 'retried' }, ...errors(400, 401) },
  });
  for (const path of ['/healthz', '/readyz', '/metrics']) {
    registry.registerPath({ method: 'get', path, responses: { 200: { description: 'ok' }, 503: { description: 'not ready' } } });
  }
  for (const extend of extensions) extend(registry);

  return new OpenApiGeneratorV3(registry.definitions).generateDocument({
    openapi: '3.0.3',
    info: { title: 'Withdraw system', version: '1.0.0', description: 'Envelope: {code, msg, data}. Money is a decimal string.' },
  });
}
