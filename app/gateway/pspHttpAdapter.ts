// The provider adapter over HTTP (undici), for the simulator's API and providers shaped like it.
// Connect and response timeouts are bounded; the idempotency key is our transactionId.
import { Agent, request } from 'undici';
import type { PayoutLookup, PayoutRequest, PspAdapter, StatementFetch, SubmitOutcome } from './pspAdapter.ts';

export type PspHttpSettings = Readonly<{
  baseUrl: string;
  connectTimeoutMs: number;
  /** whole-request deadline: headers and body */
  timeoutMs: number;
  connectionsMax: number;
}>;

const RESPONSE_BODY_LENGTH_MAX = 64 * 1024;
/** A statement has one line (about 120 bytes) per payout of the day: room for a few million. */
export const STATEMENT_BODY_LENGTH_MAX = 512 * 1024 * 1024;
/** Downloading a large statement takes longer than one API call. */
const STATEMENT_TIMEOUT_MS_MIN = 120_000;

export function createPspHttpAdapter(settings: PspHttpSettings): PspAdapter {
  const agent = new Agent({
    connect: { timeout: settings.connectTimeoutMs },
    connections: settings.connectionsMax,
    headersTimeout: settings.timeoutMs,
    bodyTimeout: settings.timeoutMs,
    keepAliveTimeout: 30_000,
  });
  const base = settings.baseUrl.replace(/\/+$/, '');

  async function send(method: 'GET' | 'POST', path: string, body: unknown, headers: Record<string, string>, signal?: AbortSignal) {
    const deadline = AbortSignal.timeout(settings.timeoutMs);
    const response = await request(`${base}${path}`, {
      method,
      dispatcher: agent,
      headers: { accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: signal ? AbortSignal.any([signal, deadline]) : deadline,
    });
    const text = await readBounded(response.body);
    let json: Record<string, unknown> = {};
    try {
      const parsed: unknown = text ? JSON.parse(text) : {};
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) json = parsed as Record<string, unknown>;
    } catch {
      json = { unparsedBody: text.slice(0, 500) };
    }
    return { status: response.statusCode, json: storable(json) as Record<string, unknown> };
  }

  return {
    async submitPayout(payout: PayoutRequest, signal?: AbortSignal): Promise<SubmitOutcome> {
      let reply: { status: number; json: Record<string, unknown> };
      try {
        reply = await send('POST', '/payouts', payout, { 'idempotency-key': payout.reference }, signal);
      } catch (error) {
        return { kind: 'unknown', httpStatus: null, reason: describeTransportError(error), detail: {} };
      }
      return classifySubmit(reply.status, reply.json);
    },

    async getPayout(reference: string, signal?: AbortSignal): Promise<PayoutLookup> {
      let reply: { status: number; json: Record<string, unknown> };
      try {
        reply = await send('GET', `/payouts/${encodeURIComponent(reference)}`, undefined, {}, signal);
      } catch (error) {
        return { kind: 'unknown', reason: describeTransportError(error) };
      }
      if (reply.status === 404) {
        // only the provider's own "no such payout" is an answer; any other 404 (a wrong base URL, a
        // proxy's page) says nothing about the payout
        return payoutNotFound(reply.json, reference)
          ? { kind: 'not_found' }
          : { kind: 'unknown', reason: 'HTTP 404 that does not name the payout' };
      }
      const status = reply.json.status;
      if (reply.status === 200 && (status === 'pending' || status === 'paid' || status === 'failed')) {
        const failureCode = typeof reply.json.failureCode === 'string' ? reply.json.failureCode : null;
        return { kind: 'found', status, failureCode, detail: reply.json };
      }
      return { kind: 'unknown', reason: `HTTP ${reply.status}` };
    },

    async getSettlementStatement(date: string, signal?: AbortSignal): Promise<StatementFetch> {
      if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) throw new RangeError(`date must be YYYY-MM-DD, got ${JSON.stringify(date)}`);
      const deadline = AbortSignal.timeout(Math.max(settings.timeoutMs, STATEMENT_TIMEOUT_MS_MIN));
      try {
        const response = await request(`${base}/settlements?date=${date}`, {
          method: 'GET',
          dispatcher: agent,
          headers: { accept: 'text/csv' },
          headersTimeout: settings.timeoutMs,
          bodyTimeout: Math.max(settings.timeoutMs, STATEMENT_TIMEOUT_MS_MIN),
          signal: signal ? AbortSignal.any([signal, deadline]) : deadline,
        });
        const { text, truncated } = await readUpTo(response.body, STATEMENT_BODY_LENGTH_MAX);
        if (truncated) return { kind: 'unknown', reason: `statement larger than ${STATEMENT_BODY_LENGTH_MAX} bytes` };
        if (response.statusCode !== 200) return { kind: 'unknown', reason: `HTTP ${response.statusCode}` };
        return { kind: 'found', csv: text };
      } catch (error) {
        return { kind: 'unknown', reason: describeTransportError(error) };
      }
    },

    close: () => agent.close(),
  };
}

/** A 404 body of the provider's own: `{"error": {"code": "payout_not_found", "reference": <the one asked>}}`. */
export function payoutNotFound(body: Record<string, unknown>, reference: string): boolean {
  const error = body.error as Record<string, unknown> | undefined;
  return typeof error === 'object' && error !== null && error.code === 'payout_not_found' && error.reference === reference;
}

async function readUpTo(body: AsyncIterable<Buffer | Uint8Array>, limit: number): Promise<{ text: string; truncated: boolean }> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of body) {
    length += chunk.length;
    if (length > limit) return { text: '', truncated: true };
    chunks.push(Buffer.from(chunk));
  }
  return { text: Buffer.concat(chunks).toString('utf8'), truncated: false };
}

/** The closed set: 2xx accepted; a 4xx that says it is definitive rejected; anything else unknown. */
export function classifySubmit(status: number, body: Record<string, unknown>): SubmitOutcome {
  if (status >= 200 && status < 300) return { kind: 'accepted', httpStatus: status, detail: body };
  if (status >= 400 && status < 500 && body.definitive === true) {
    const error = (body.error ?? {}) as Record<string, unknown>;
    const code = typeof error.reason === 'string' ? error.reason : typeof error.code === 'string' ? error.code : 'provider_rejected';
    return { kind: 'rejected', httpStatus: status, code, detail: body };
  }
  return { kind: 'unknown', httpStatus: status, reason: `HTTP ${status}`, detail: body };
}

/**
 * What the provider sent is kept as evidence in jsonb, which refuses NUL and lone surrogates: one
 * odd answer must not make a whole batch of answers unrecordable.
 */
export function storable(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return value.toWellFormed().replaceAll('\u0000', '\ufffd');
  if (depth > 20 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => storable(v, depth + 1));
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [storable(k, depth + 1) as string, storable(v, depth + 1)]));
}

function describeTransportError(error: unknown): string {
  const e = error as { name?: string; code?: string; message?: string };
  return (storable([e.name, e.code, e.message].filter(Boolean).join(': ').slice(0, 300)) as string) || 'transport error';
}

async function readBounded(body: AsyncIterable<Buffer | Uint8Array>): Promise<string> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of body) {
    length += chunk.length;
    if (length > RESPONSE_BODY_LENGTH_MAX) continue; // keep draining so the socket is reusable
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks).toString('utf8');
}
