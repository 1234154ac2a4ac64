// The oracle of the malformed-input suite (test/malformedInput.test.ts): what the contract answers
// to a request, field by field; and the checks every reply must pass. It answers MAYBE_VALID for
// anything the contract might accept; such requests are never sent, so every request the suite
// sends must be refused. The hostile values themselves are in hostileInput.ts.
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';
import querystring from 'node:querystring';
import { isLosslessNumber, parse as parseJson } from 'lossless-json';
import type pg from 'pg';
import { API_ERRORS, type ApiErrorKind } from '../../app/http/apiErrors.ts';

export type Outcome = Readonly<{ status: number; code: number }>;
export const MAYBE_VALID = 'maybe-valid' as const;
export type Verdict = Outcome | typeof MAYBE_VALID;
const outcome = (kind: ApiErrorKind): Outcome => ({ status: API_ERRORS[kind].status, code: API_ERRORS[kind].code });
export const INVALID = outcome('invalid_request');
export const BAD_KEY = outcome('invalid_idempotency_key');
export const UNAUTHENTICATED = outcome('unauthenticated');
export const NOT_FOUND = outcome('not_found');
export const CONFLICT = outcome('conflict');
export const TOO_LARGE = outcome('payload_too_large');

// ---------------------------------------------------------------------------------------------
// field judges: what the contract says about one field's value (as lossless-json parses it)

export type Judge = (value: unknown) => Verdict;

export const matches =
  (pattern: RegExp): Judge =>
  (v) =>
    typeof v === 'string' && pattern.test(v) ? MAYBE_VALID : INVALID;
export const oneOf =
  (values: readonly string[]): Judge =>
  (v) =>
    typeof v === 'string' && values.includes(v) ? MAYBE_VALID : INVALID;
export const optional =
  (judge: Judge): Judge =>
  (v) =>
    v === undefined ? MAYBE_VALID : judge(v);
export const nullable =
  (judge: Judge): Judge =>
  (v) =>
    v === null ? MAYBE_VALID : judge(v);
/** a string of min..max UTF-16 units (zod's length) after `trim` when asked */
export const textOf =
  (min: number, max: number, trim = false): Judge =>
  (v) => {
    if (typeof v !== 'string') return INVALID;
    const length = (trim ? v.trim() : v).length;
    return length >= min && length <= max ? MAYBE_VALID : INVALID;
  };
export const UUID_TEXT = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** one value is the fixture's: it is valid; any other value of the right form gets `other` */
export const sameAs =
  (expected: string, form: Judge, other: Outcome, caseInsensitive = false): Judge =>
  (v) => {
    const verdict = form(v);
    if (verdict !== MAYBE_VALID) return verdict;
    const same = caseInsensitive ? String(v).toLowerCase() === expected.toLowerCase() : v === expected;
    return same ? MAYBE_VALID : other;
  };

const NUMBER_TEXT = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/;
/**
 * The contract on amounts (a JSON number or a decimal string, positive, at most `decimals`
 * decimals, at most 1e12): INVALID only when it clearly refuses the value; anything debatable
 * ("1.000", "01", "1e2" as a string, very long texts) is MAYBE_VALID and never sent.
 */
export const amount =
  (decimals = 2): Judge =>
  (v) => {
    const text = typeof v === 'string' ? v : isLosslessNumber(v) ? v.value : null;
    const match = text === null ? null : NUMBER_TEXT.exec(text);
    if (!match) return INVALID;
    const [, sign, integer = '0', fraction = '', exponentText = '0'] = match;
    const digits = BigInt(integer + fraction);
    if (digits === 0n || sign === '-') return INVALID;
    const exponent = Number(exponentText);
    if (!Number.isSafeInteger(exponent) || Math.abs(exponent) > 1000) return INVALID; // far too large or too precise
    let [significant, scale] = [digits, fraction.length - exponent];
    while (scale > 0 && significant % 10n === 0n) [significant, scale] = [significant / 10n, scale - 1];
    if (scale > decimals) return INVALID;
    const minor = significant * 10n ** BigInt(decimals - scale);
    return minor > 10n ** BigInt(12 + decimals) ? INVALID : MAYBE_VALID;
  };

// ---------------------------------------------------------------------------------------------
// the body oracle: decoding as the server does (UTF-8, BOM dropped, lossless-json), then fields

// biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is exactly what this pattern looks for
const NO_TEXT = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** A NUL or an unpaired surrogate in a key or string: refused (PostgreSQL cannot store them). */
export function hasUnstorableText(root: unknown): boolean {
  const pending: unknown[] = [root];
  while (pending.length > 0) {
    const value = pending.pop();
    if (typeof value === 'string' && NO_TEXT.test(value)) return true;
    if (Array.isArray(value)) pending.push(...value);
    else if (value !== null && typeof value === 'object' && !isLosslessNumber(value)) {
      for (const [key, item] of Object.entries(value)) {
        if (NO_TEXT.test(key)) return true;
        pending.push(item);
      }
    }
  }
  return false;
}

export type BodyShape = Readonly<Record<string, Judge>>;

/** What the route answers to these bytes (already decompressed): 400s first, then the first other refusal. */
export function judgeBody(shape: BodyShape, bytes: Buffer): Verdict {
  let value: unknown;
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    value = text === '' ? undefined : parseJson(text);
  } catch {
    return INVALID;
  }
  if (hasUnstorableText(value)) return INVALID;
  if (value === null || typeof value !== 'object' || Array.isArray(value) || isLosslessNumber(value)) return INVALID;
  const record = value as Record<string, unknown>;
  const verdicts = Object.entries(shape).map(([name, judge]) => judge(Object.hasOwn(record, name) ? record[name] : undefined));
  const refusals = verdicts.filter((v): v is Outcome => v !== MAYBE_VALID);
  return refusals.find((v) => v.status === 400) ?? refusals[0] ?? MAYBE_VALID;
}

export type QueryShape = Readonly<Record<string, (value: string | string[] | undefined) => Verdict>>;

/** express's 'simple' query parser is node:querystring */
export function judgeQuery(shape: QueryShape, rawQuery: string): Verdict {
  const parsed = querystring.parse(rawQuery);
  for (const [name, judge] of Object.entries(shape)) {
    const verdict = judge(parsed[name]);
    if (verdict !== MAYBE_VALID) return verdict;
  }
  return MAYBE_VALID;
}

/** z.coerce.number().int().min(min).max(max), optional */
export const coercedInt =
  (min: number, max: number) =>
  (v: string | string[] | undefined): Verdict => {
    if (v === undefined) return MAYBE_VALID;
    const n = Number(v);
    return Number.isInteger(n) && n >= min && n <= max ? MAYBE_VALID : INVALID;
  };
export const queryEnum =
  (values: readonly string[]) =>
  (v: string | string[] | undefined): Verdict =>
    v === undefined || (typeof v === 'string' && values.includes(v)) ? MAYBE_VALID : INVALID;

export type Compression = 'gzip' | 'deflate' | 'br';
/** body-parser's decompression: null when it fails (or the coding is unknown), a 400 before authentication */
export function decompress(contentEncoding: string | undefined, bytes: Buffer): Buffer | null {
  const coding = (contentEncoding ?? 'identity').toLowerCase();
  try {
    if (coding === 'identity') return bytes;
    if (coding === 'gzip') return gunzipSync(bytes);
    if (coding === 'deflate') return inflateSync(bytes);
    if (coding === 'br') return brotliDecompressSync(bytes);
  } catch {
    return null;
  }
  return null;
}

/** decodeURIComponent, as the router decodes a path parameter; null = a 400 before authentication */
export function decodeSegment(raw: string): string | null {
  try {
    return decodeURIComponent(raw);
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// replies and rows

export type Reply = Readonly<{ status: number; headers: Headers; text: string }>;

export async function send(
  baseUrl: string,
  request: { method: string; path: string; headers: Record<string, string>; body?: Buffer },
): Promise<Reply> {
  const response = await fetch(`${baseUrl}${request.path}`, {
    method: request.method,
    headers: request.headers,
    body: request.body,
    redirect: 'manual',
    signal: AbortSignal.timeout(15_000),
  });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

const CODE_STATUS = new Map(Object.values(API_ERRORS).map((e) => [e.code as number, e.status as number]));
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** What is wrong with a reply that should be `expected`; empty when nothing. */
export function replyProblems(reply: Reply, expected: Outcome, presentedRequestId?: string): string[] {
  const problems: string[] = [];
  if (reply.status >= 500) problems.push(`a ${reply.status}`);
  if (reply.status !== expected.status) problems.push(`status ${reply.status}, expected ${expected.status}`);
  if (!/^application\/json\b/.test(reply.headers.get('content-type') ?? ''))
    problems.push(`content-type ${reply.headers.get('content-type')}`);
  let body: unknown;
  try {
    body = JSON.parse(reply.text);
  } catch {
    problems.push('body is not JSON');
  }
  const envelope = body as { code?: unknown; msg?: unknown; data?: unknown } | null;
  if (envelope === null || typeof envelope !== 'object' || Array.isArray(envelope)) {
    problems.push('body is not an object');
  } else {
    if (Object.keys(envelope).sort().join() !== 'code,data,msg') problems.push(`keys ${Object.keys(envelope).join()}`);
    if (!Number.isInteger(envelope.code)) problems.push('code is not an integer');
    if (typeof envelope.msg !== 'string') problems.push('msg is not a string');
    if (envelope.data !== null) problems.push('data is not null');
    if (envelope.code !== expected.code) problems.push(`code ${String(envelope.code)}, expected ${expected.code}`);
    if (CODE_STATUS.get(envelope.code as number) !== reply.status)
      problems.push(`code ${String(envelope.code)} is not the catalogue's code for ${reply.status}`);
  }
  const requestId = reply.headers.get('x-request-id');
  if (!requestId || !REQUEST_ID.test(requestId)) problems.push(`x-request-id ${requestId}`);
  if (presentedRequestId !== undefined && REQUEST_ID.test(presentedRequestId) && requestId !== presentedRequestId)
    problems.push('x-request-id not echoed');
  return problems;
}

/** Row count and a digest of every row of every table of the database (graphile_worker's too). */
export async function tableDigests(client: pg.Client): Promise<Record<string, string>> {
  const { rows: tables } = await client.query<{ name: string }>(`
    select format('%I.%I', table_schema, table_name) as name from information_schema.tables
     where table_type = 'BASE TABLE' and table_schema in ('public', 'graphile_worker') order by 1`);
  if (tables.length === 0) return {};
  const selects = tables.map(
    ({ name }) =>
      `select ${client.escapeLiteral(name)} as name, count(*) || ' rows ' || coalesce(md5(string_agg(t::text, E'\\n' order by t::text)), '') as digest from ${name} t`,
  );
  const { rows } = await client.query<{ name: string; digest: string }>(selects.join(' union all '));
  return Object.fromEntries(rows.map((r) => [r.name, r.digest]));
}

export function changedTables(before: Record<string, string>, after: Record<string, string>): string[] {
  return [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((name) => before[name] !== after[name]);
}
