// Small pieces the console's routes share: body and query parsing, ids in paths, who acted.
import type { NextFunction, Request, Response } from 'express';
import { z as zod } from 'zod';
import { ApiError } from '../http/apiErrors.ts';
import { describeZodError } from '../http/zod.ts';
import { operatorOf } from './consoleSession.ts';

const INT8_MAX = 2n ** 63n - 1n;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function parse<T extends zod.ZodTypeAny>(schema: T, value: unknown): zod.infer<T> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new ApiError('invalid_request', describeZodError(parsed.error));
  return parsed.data;
}

/** A bigint id in a path; anything else (or past bigint's range) is "no such <what>". */
export function bigintParam(req: Request, name: string, what: string): string {
  const value = String(req.params[name]);
  if (!/^\d{1,19}$/.test(value) || BigInt(value) > INT8_MAX) throw new ApiError('not_found', `no such ${what}`);
  return value;
}

export function uuidParam(req: Request, name: string, what: string): string {
  const value = String(req.params[name]);
  if (!UUID.test(value)) throw new ApiError('not_found', `no such ${what}`);
  return value.toLowerCase();
}

export const isUuid = (value: string) => UUID.test(value);

/** A bigint id given as a string of digits within bigint's range. */
export const bigintId = zod
  .string()
  .regex(/^\d{1,19}$/, 'must be an id')
  .refine((id) => !/^\d{1,19}$/.test(id) || BigInt(id) <= INT8_MAX, 'must be at most 9223372036854775807');

/** Who acted, as the audit trail records it. */
export type Actor = Readonly<{ name: string; operatorId: string | null }>;

export function consoleActor(req: Request): Actor {
  const operator = operatorOf(req);
  return { name: operator.login, operatorId: operator.operatorId };
}

/** The audit entry of an action taken by the request's console operator. */
export function consoleAudit(req: Request, action: string, subject: string, details: Record<string, unknown>) {
  const operator = operatorOf(req);
  return { operator: operator.login, operatorId: operator.operatorId, action, subject, details, requestId: String(req.id) };
}

/** Responses that hold operators' data are never cached, nor framed, nor sniffed. */
export function privateResponse(_req: Request, res: Response, next: NextFunction) {
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Referrer-Policy', 'no-referrer');
  next();
}

export const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
