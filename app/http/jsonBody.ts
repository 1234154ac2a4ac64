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
    /** set when the body is not valid JSON; raised by readBody(), after authentication */
    bodyError?: ApiError;
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
      }
      next();
    },
  ];
}

/** The parsed JSON body; throws the 400 if it was not valid JSON. */
export function readBody(req: Request): unknown {
  if (req.bodyError) throw req.bodyError;
  return req.body;
}

export type { LosslessNumber };
export { isLosslessNumber };
