// What every route's entry in the OpenAPI document is made of: the envelope, the error answers a
// route really gives, the security schemes, the idempotency headers. A routes module describes its
// own routes with these, in an OpenApiExtension next to the routes (see app/http/openapi.ts for
// the list), and test/openapiRoutes.test.ts fails when express serves a route the document lacks.
import type { OpenAPIRegistry, RouteConfig } from '@asteasolutions/zod-to-openapi';
import { API_ERRORS, type ApiErrorKind } from './apiErrors.ts';
import { z } from './zod.ts';

export type OpenApiExtension = (registry: OpenAPIRegistry) => void;

/** Security requirements by who may call (the schemes are registered by buildOpenApiDocument). */
export const SECURITY = {
  user: [{ userJwt: [] }],
  admin: [{ adminToken: [] }],
  userOrAdmin: [{ userJwt: [] }, { adminToken: [] }],
  internal: [{ internalToken: [] }],
  consoleSession: [{ consoleSession: [] }],
  none: [],
} as const satisfies Record<string, RouteConfig['security']>;

export const envelopeOf = <T extends z.ZodTypeAny>(data: T) =>
  z.object({ code: z.literal(0).openapi({ type: 'integer' }), msg: z.string(), data });

export const ErrorEnvelope = z
  .object({
    code: z
      .number()
      .int()
      .openapi({
        description: Object.entries(API_ERRORS)
          .map(([kind, e]) => `${e.code} ${kind} (HTTP ${e.status})`)
          .join('; '),
        example: 40001,
      }),
    msg: z.string().openapi({ example: 'amount: must be positive' }),
    data: z.object({}).passthrough().nullable().openapi({ description: 'null, or details (e.g. the endpointId a conflict refers to)' }),
  })
  .openapi('ErrorEnvelope');

const STATUS_WORDS: Readonly<Record<number, string>> = {
  400: 'invalid request: a body, parameter or header is invalid; msg names it',
  401: 'not authenticated: missing, bad or expired credentials',
  403: 'authenticated but not allowed',
  404: 'no such resource (also another user’s)',
  409: 'conflict: the same key in flight, or the request contradicts what is recorded',
  413: 'the request body is too large',
  422: 'refused by a business rule',
  429: 'rate limited; Retry-After says when to retry',
  500: 'internal error; nothing half-done is left behind',
  503: 'a dependency is unavailable; retry (with the same key)',
};

/** Error answers with the envelope, by HTTP status; the codes each status carries are in its description. */
export function errors(...statuses: number[]): NonNullable<RouteConfig['responses']> {
  return Object.fromEntries(
    statuses.map((status) => {
      const codes = (Object.entries(API_ERRORS) as Array<[ApiErrorKind, { status: number; code: number }]>)
        .filter(([, e]) => e.status === status)
        .map(([kind, e]) => `${e.code} ${kind}`);
      const description = `${STATUS_WORDS[status] ?? 'error'}${codes.length ? ` (${codes.join(', ')})` : ''}`;
      return [String(status), { description, content: { 'application/json': { schema: ErrorEnvelope } } }];
    }),
  );
}

/** What any route can answer: a body too large (413, before anything else), an internal error (500). */
export const ALWAYS = [413, 500] as const;

export const json = <T extends z.ZodTypeAny>(schema: T) => ({ content: { 'application/json': { schema } } });

export const okResponse = <T extends z.ZodTypeAny>(description: string, data: T) => ({
  description,
  content: { 'application/json': { schema: envelopeOf(data) } },
});

/** The idempotency key: `idempotent-key`, or its alias `Idempotency-Key` (one of them is required). */
export const IDEMPOTENCY_HEADERS = z.object({
  'idempotent-key': z
    .string()
    .uuid()
    .optional()
    .openapi({ description: 'a UUIDv7 the client makes once per request and sends again on every retry' }),
  'Idempotency-Key': z.string().uuid().optional().openapi({ description: 'alias of idempotent-key; if both are sent they must agree' }),
});

/** An envelope whose data this document does not detail (operational JSON of the dashboard). */
export const AnyData = z.object({}).passthrough().openapi({ description: 'an object this document does not detail' });
