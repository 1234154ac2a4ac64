// One catalogue of API errors: each kind maps to exactly one HTTP status and one envelope code
// (docs/api.md, whose table a test compares with this one). Building an error never logs it; the error handler logs once.

export const API_ERRORS = {
  invalid_request: { status: 400, code: 40001 },
  invalid_idempotency_key: { status: 400, code: 40002 },
  unauthenticated: { status: 401, code: 40101 },
  forbidden: { status: 403, code: 40301 },
  not_found: { status: 404, code: 40401 },
  request_in_flight: { status: 409, code: 40901 },
  conflict: { status: 409, code: 40902 },
  payload_too_large: { status: 413, code: 41301 },
  idempotency_key_reused: { status: 422, code: 42201 },
  insufficient_funds: { status: 422, code: 42202 },
  account_unusable: { status: 422, code: 42203 },
  limit_exceeded: { status: 422, code: 42204 },
  invalid_state: { status: 422, code: 42205 },
  idempotency_key_expired: { status: 422, code: 42206 },
  rate_limited: { status: 429, code: 42901 },
  internal: { status: 500, code: 50001 },
  unavailable: { status: 503, code: 50301 },
} as const satisfies Record<string, { status: number; code: number }>;

export type ApiErrorKind = keyof typeof API_ERRORS;

export type Envelope<T = unknown> = { code: number; msg: string; data: T | null };

export class ApiError extends Error {
  override readonly name = 'ApiError';
  readonly kind: ApiErrorKind;
  readonly status: number;
  readonly code: number;
  readonly data: Record<string, unknown> | null;
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    kind: ApiErrorKind,
    message: string,
    options: { cause?: unknown; data?: Record<string, unknown>; headers?: Record<string, string> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.kind = kind;
    this.status = API_ERRORS[kind].status;
    this.code = API_ERRORS[kind].code;
    this.data = options.data ?? null;
    this.headers = options.headers ?? {};
  }

  envelope(): Envelope {
    return { code: this.code, msg: this.message, data: this.data };
  }
}

export function errorEnvelope(kind: ApiErrorKind, message: string): { status: number; body: Envelope } {
  return { status: API_ERRORS[kind].status, body: { code: API_ERRORS[kind].code, msg: message, data: null } };
}

export function okEnvelope<T>(msg: string, data: T): Envelope<T> {
  return { code: 0, msg, data };
}
