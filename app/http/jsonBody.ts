// Request bodies are parsed from the raw bytes with lossless-json: a JSON number keeps its exact
// source text (123.12 never becomes a float), duplicate keys with different values are refused,
// and the raw bytes stay available for signature checks.
import type { NextFunction, Request, Response } from 'express';
import express from 'express';
import { isLosslessNumber, parse, type LosslessNumber } from 'lossless-json';
import { ApiError } from './apiErrors.ts';

declare module 'express-serve-static-core' {
  interface Request {
    rawBody?: Buffer;
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function jsonBody(limitBytes: number) {
  const raw = express.raw({ type: () => true, limit: limitBytes });
  return [
    raw,
    (req: Request, _res: Response, next: NextFunction) => {
      const bytes = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      req.rawBody = bytes;
      if (bytes.length === 0) {
        req.body = undefined;
        return next();
      }
      let text: string;
      try {
        text = utf8.decode(bytes);
      } catch (cause) {
        return next(new ApiError('invalid_request', 'body is not valid UTF-8', { cause }));
      }
      try {
        req.body = parse(text);
      } catch (cause) {
        const detail = cause instanceof RangeError ? 'nested too deeply' : (cause as Error).message;
        return next(new ApiError('invalid_request', `body is not valid JSON: ${detail}`, { cause }));
      }
      next();
    },
  ];
}

export type { LosslessNumber };
export { isLosslessNumber };

/** Turns a parsed body back into plain JSON values (numbers as JS numbers) for non-money fields. */
export function toPlainJson(value: unknown): unknown {
  if (isLosslessNumber(value)) return Number((value as LosslessNumber).value);
  if (Array.isArray(value)) return value.map(toPlainJson);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toPlainJson(v)]));
  }
  return value;
}
