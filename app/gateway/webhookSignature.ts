// Signing and verification of payout-provider callbacks (contract: POST /withdraw/notify).
// Header: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`; several `v1` entries may be
// present while the provider rotates its secret, and we may hold several secrets while we rotate ours.
// Pure: node:crypto only, no clock (the caller passes `nowSec`), no logging.
import { createHmac, timingSafeEqual } from 'node:crypto';

export const WEBHOOK_TOLERANCE_SEC_DEFAULT = 300;
/** A real header is ~80 chars per signature; anything far longer is an attack or a bug. */
export const WEBHOOK_HEADER_LENGTH_MAX = 2048;
/** Bounds the HMAC work one request can cause (entries x secrets comparisons). */
export const WEBHOOK_SIGNATURES_MAX = 10;

const TIMESTAMP_PATTERN = /^\d{1,12}$/;
const SIGNATURE_PATTERN = /^[0-9a-fA-F]{64}$/; // hex of a 32-byte SHA-256 HMAC

export type WebhookVerifyFailure = 'missing' | 'malformed' | 'stale' | 'bad_signature';
export type WebhookVerifyResult = { ok: true; timestampSec: number } | { ok: false; reason: WebhookVerifyFailure };

type ParsedHeader = { timestampText: string; timestampSec: number; signatures: Buffer[] };

function hmacDigest(secret: string, timestampText: string, rawBody: string | Buffer): Buffer {
  const hmac = createHmac('sha256', secret);
  hmac.update(`${timestampText}.`);
  hmac.update(rawBody);
  return hmac.digest();
}

/** Returns the `X-Signature` header value for `rawBody`, signed at `timestampSec`. */
export function signWebhook(secret: string, rawBody: string, timestampSec: number): string {
  if (secret.length === 0) throw new Error('signWebhook: secret must not be empty');
  if (!Number.isSafeInteger(timestampSec) || timestampSec < 0) {
    throw new Error(`signWebhook: timestampSec must be a non-negative integer, got ${timestampSec}`);
  }
  const timestampText = String(timestampSec);
  return `t=${timestampText},v1=${hmacDigest(secret, timestampText, rawBody).toString('hex')}`;
}

/** Parses the header strictly; null means malformed. Unknown schemes (e.g. `v0=`) are ignored. */
function parseHeader(header: string): ParsedHeader | null {
  if (header.length > WEBHOOK_HEADER_LENGTH_MAX) return null;
  let timestampText: string | undefined;
  const signatures: Buffer[] = [];
  for (const part of header.split(',')) {
    const separator = part.indexOf('=');
    if (separator <= 0) return null;
    const key = part.slice(0, separator).trim();
    const value = part.slice(separator + 1).trim();
    if (key === 't') {
      // Two timestamps would make it ambiguous which one was signed.
      if (timestampText !== undefined || !TIMESTAMP_PATTERN.test(value)) return null;
      timestampText = value;
    } else if (key === 'v1') {
      if (!SIGNATURE_PATTERN.test(value)) return null;
      signatures.push(Buffer.from(value, 'hex'));
      if (signatures.length > WEBHOOK_SIGNATURES_MAX) return null;
    }
  }
  if (timestampText === undefined || signatures.length === 0) return null;
  return { timestampText, timestampSec: Number(timestampText), signatures };
}

/** True when any (signature, secret) pair matches; every comparison is constant-time. */
function anySignatureMatches(parsed: ParsedHeader, rawBody: string | Buffer, secrets: readonly string[]): boolean {
  let matched = false;
  for (const secret of secrets) {
    // An empty secret would make the HMAC forgeable by anyone; treat it as never matching.
    if (secret.length === 0) continue;
    const expected = hmacDigest(secret, parsed.timestampText, rawBody);
    for (const signature of parsed.signatures) {
      // Lengths are fixed by SIGNATURE_PATTERN, but timingSafeEqual throws on a mismatch, so check.
      if (signature.length === expected.length && timingSafeEqual(signature, expected)) matched = true;
    }
  }
  return matched;
}

/**
 * Verifies `header` against the exact raw body. A timestamp more than `toleranceSec` away from
 * `nowSec`, in the past (replay) or in the future (clock skew or forgery), is `stale`.
 */
export function verifyWebhook(
  header: string | undefined,
  rawBody: string | Buffer,
  secrets: readonly string[],
  nowSec: number,
  toleranceSec = WEBHOOK_TOLERANCE_SEC_DEFAULT,
): WebhookVerifyResult {
  if (header === undefined || header.trim().length === 0) return { ok: false, reason: 'missing' };
  const parsed = parseHeader(header);
  if (parsed === null) return { ok: false, reason: 'malformed' };
  if (Math.abs(nowSec - parsed.timestampSec) > toleranceSec) return { ok: false, reason: 'stale' };
  if (!anySignatureMatches(parsed, rawBody, secrets)) return { ok: false, reason: 'bad_signature' };
  return { ok: true, timestampSec: parsed.timestampSec };
}
