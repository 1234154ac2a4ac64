// Minimal JSON-over-node:http helpers of the payout provider simulator: kept tiny because the
// simulator must sustain >1000 requests/s on two cores.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { z } from 'zod';
import { settlementCsv, type SettlementLine } from './pspSimPayouts.ts';

/** Bodies larger than this get 413: every request body here is well under 1 KB. */
export const BODY_BYTES_MAX = 64 * 1024;

const REPLY_TOO_LARGE = JSON.stringify({ error: { code: 'payload_too_large', message: `body exceeds ${BODY_BYTES_MAX} bytes` } });

export function invalidRequest(message: string, definitive: boolean): string {
  return JSON.stringify({ error: { code: 'invalid_request', message }, ...(definitive ? { definitive: true } : {}) });
}

export function zodMessage(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`).join('; ');
}

export function send(res: ServerResponse, status: number, body: string, closeConnection = false): void {
  if (res.writableEnded || res.destroyed) return; // the client gave up while we were waiting
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    ...(closeConnection ? { connection: 'close' } : {}),
  });
  res.end(body);
}

/** Reads a bounded body; answers 413 itself, and `onBody` receives the raw text otherwise. */
export function readBody(req: IncomingMessage, res: ServerResponse, onBody: (raw: string) => void): void {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > BODY_BYTES_MAX) {
    send(res, 413, REPLY_TOO_LARGE, true);
    req.resume();
    return;
  }
  const chunks: Buffer[] = [];
  let received = 0;
  let tooLarge = false;
  req.on('data', (chunk: Buffer) => {
    if (tooLarge) return;
    received += chunk.length;
    if (received > BODY_BYTES_MAX) {
      tooLarge = true;
      chunks.length = 0;
      send(res, 413, REPLY_TOO_LARGE, true);
      return;
    }
    chunks.push(chunk);
  });
  req.on('end', () => {
    if (!tooLarge) onBody(Buffer.concat(chunks).toString('utf8'));
  });
}

export function parseJson(raw: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(raw) };
  } catch {
    return { ok: false };
  }
}

/** GET /settlements?date=YYYY-MM-DD: that UTC day's statement as CSV (a day with nothing settled has the header alone). */
export function sendStatement(res: ServerResponse, url: string, statement: (date: string) => SettlementLine[]): void {
  const date = new URLSearchParams(url.slice(url.indexOf('?') + 1)).get('date') ?? '';
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date) || Number.isNaN(Date.parse(`${date}T00:00:00Z`))) {
    send(res, 400, invalidRequest('date must be YYYY-MM-DD', true));
    return;
  }
  const body = settlementCsv(statement(date));
  if (res.writableEnded || res.destroyed) return;
  res.writeHead(200, { 'content-type': 'text/csv; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
