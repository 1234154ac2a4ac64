// A token bucket per user, in this process (each web instance limits on its own: with N instances
// a user gets up to N times the rate; the database stays the guard of correctness, this only
// sheds load). Disabled when the rate is 0.
import type { NextFunction, Request, Response } from 'express';
import { LRUCache } from 'lru-cache';
import { ApiError } from './apiErrors.ts';

const BUCKETS_MAX = 100_000;

export function userRateLimit(settings: { perSecond: number; burst: number }) {
  if (settings.perSecond <= 0) return (_req: Request, _res: Response, next: NextFunction) => next();
  const buckets = new LRUCache<string, { tokens: number; atMs: number }>({ max: BUCKETS_MAX });
  return (req: Request, _res: Response, next: NextFunction) => {
    const principal = req.principal;
    if (principal?.kind !== 'user') return next();
    const now = Date.now();
    const bucket = buckets.get(principal.userId) ?? { tokens: settings.burst, atMs: now };
    bucket.tokens = Math.min(settings.burst, bucket.tokens + ((now - bucket.atMs) / 1000) * settings.perSecond);
    bucket.atMs = now;
    if (bucket.tokens < 1) {
      buckets.set(principal.userId, bucket);
      const retryAfterSeconds = Math.max(1, Math.ceil((1 - bucket.tokens) / settings.perSecond));
      return next(
        new ApiError('rate_limited', 'too many requests; retry later with the same idempotent-key', {
          headers: { 'Retry-After': String(retryAfterSeconds) },
        }),
      );
    }
    bucket.tokens -= 1;
    buckets.set(principal.userId, bucket);
    next();
  };
}
