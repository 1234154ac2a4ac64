// Request bodies are parsed from the raw bytes with lossless-json: a JSON number keeps its exact
// source text (123.12 never becomes a float), duplicate keys with different values are refused,
// so is a body that is not an object or holds text PostgreSQL cannot store, and the raw bytes stay
// available for signature checks.
import type { NextFunction, Request, Response } from 'express';
import express from 'express';
import { isLosslessNumber, parse, type LosslessNumber } from 'lossless-json';
import { ApiError } from './apiErrors.ts';

declare module 'express-serve-static-core' {
  interface Request {
    rawBody?: Buffer;
    /** set when the body is not valid JSON; raised by readBody(), after authentication */
    bodyError?: ApiError;
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function jsonBody(limitBytes: number, limitBytesByPath: Readonly<Record<string, number>> = {}) {
  const raw = express.raw({ type: () => true, limit: limitBytes });
  const rawByPath = new Map(Object.entries(limitBytesByPath).map(([path, limit]) => [path, express.raw({ type: () => true, limit })]));
  return [
    (req: Request, res: Response, next: NextFunction) => (rawByPath.get(req.path) ?? raw)(req, res, next),
    (req: Request, _res: Response, next: NextFunction) => {
      const bytes = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      req.rawBody = bytes;
      if (bytes.length === 0) {
        req.body = undefined;
        return next();
      }
      // a bad body is reported by readBody(), so that authentication is judged first
      let text: string;
      try {
        text = utf8.decode(bytes);
      } catch (cause) {
        req.body = undefined;
        req.bodyError = new ApiError('invalid_request', 'body is not valid UTF-8', { cause });
        return next();
      }
      try {
        req.body = parse(text);
      } catch (cause) {
        const detail = cause instanceof RangeError ? 'nested too deeply' : (cause as Error).message;
        req.body = undefined;
        req.bodyError = new ApiError('invalid_request', `body is not valid JSON: ${detail}`, { cause });
        return next();
      }
      // every body of this API is an object; a bare JSON number would parse to a LosslessNumber
      // instance, which z.object() takes for an object with no fields (PUT limits accepted `0`)
      const value: unknown = req.body;
      if (value === null || typeof value !== 'object' || Array.isArray(value) || isLosslessNumber(value)) {
        req.body = undefined;
        req.bodyError = new ApiError('invalid_request', 'body must be a JSON object');
        return next();
      }
      const unstorable = unstorableTextAt(req.body);
      if (unstorable !== null) {
        req.body = undefined;
        req.bodyError = new ApiError('invalid_request', `${unstorable || 'body'}: contains a NUL character or an unpaired surrogate`);
      }
      next();
    },
  ];
}

// "\u0000" and a lone "\ud800" are valid JSON escapes, but PostgreSQL text and jsonb refuse them
// (a 500 at the insert); no field of this API can mean either, so the body is refused up front.
// biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is exactly what this pattern looks for
const UNSTORABLE_TEXT = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** The path ("a.b.0") of the first string, or of the object whose key, holds unstorable text ('' = the root); null if none. */
function unstorableTextAt(root: unknown): string | null {
  // iterative: the parser accepts nesting deeper than a recursive walk would like
  const pending: Array<{ value: unknown; path: string }> = [{ value: root, path: '' }];
  while (pending.length > 0) {
    const { value, path } = pending.pop()!;
    if (typeof value === 'string') {
      if (UNSTORABLE_TEXT.test(value)) return path;
    } else if (Array.isArray(value)) {
      for (const [index, item] of value.entries()) pending.push({ value: item, path: path ? `${path}.${index}` : String(index) });
    } else if (value !== null && typeof value === 'object' && !isLosslessNumber(value)) {
      for (const [key, item] of Object.entries(value)) {
        if (UNSTORABLE_TEXT.test(key)) return path; // not echoing the key itself
        pending.push({ value: item, path: path ? `${path}.${key}` : key });
      }
    }
  }
  return null;
}

/** The parsed JSON body; throws the 400 if it was not valid JSON. */
export function readBody(req: Request): unknown {
  if (req.bodyError) throw req.bodyError;
  return req.body;
}

export type { LosslessNumber };
export { isLosslessNumber };
