// Authentication: user JWTs (HS256, claim `sub` = user id, `exp` honoured), the admin bearer
// token(s) and the internal bearer token. Token comparison is constant-time.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import { LRUCache } from 'lru-cache';
import { ApiError } from './apiErrors.ts';

export type Principal =
  | { readonly kind: 'user'; readonly userId: string }
  /** operator: the named token's name, or "admin" (the shared ADMIN_TOKEN) */
  | { readonly kind: 'admin'; readonly operator: string; readonly identified: boolean }
  | { readonly kind: 'internal' };

declare module 'express-serve-static-core' {
  interface Request {
    principal?: Principal;
  }
}

const USER_ID_PATTERN = /^[A-Za-z0-9_.:@-]{1,128}$/;
export const SHARED_ADMIN_OPERATOR = 'admin';
const BEARER_LENGTH_MAX = 4096;
/** Verified tokens are remembered (never rejected ones): HMAC verification is most of a request's CPU. */
const VERIFIED_TOKENS_MAX = 50_000;
const VERIFIED_TOKEN_TTL_MS = 5 * 60_000;

export type AuthSettings = Readonly<{
  jwtSecret: string;
  /** operator name → token; contains at least "admin" → ADMIN_TOKEN */
  adminTokens: ReadonlyMap<string, string>;
  internalToken: string;
}>;

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** Constant-time equality that also hides the length of the expected value. */
export function tokensEqual(presented: string, expected: string): boolean {
  return timingSafeEqual(digest(presented), digest(expected));
}

export function bearerToken(req: Request): string | null {
  const header = req.headers.authorization;
  if (typeof header !== 'string' || header.length > BEARER_LENGTH_MAX) return null;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1] ?? null;
}

export function createAuth(settings: AuthSettings) {
  const key = new TextEncoder().encode(settings.jwtSecret);
  const verified = new LRUCache<string, { userId: string; expiresAtMs: number }>({ max: VERIFIED_TOKENS_MAX, ttl: VERIFIED_TOKEN_TTL_MS });

  async function userFromToken(token: string): Promise<string> {
    const known = verified.get(token);
    if (known && known.expiresAtMs > Date.now()) return known.userId;
    try {
      const { payload } = await jwtVerify(token, key, { algorithms: ['HS256'], requiredClaims: ['sub'] });
      const sub = payload.sub;
      if (typeof sub !== 'string' || !USER_ID_PATTERN.test(sub))
        throw new ApiError('unauthenticated', 'token subject is not a valid user id');
      verified.set(token, { userId: sub, expiresAtMs: payload.exp === undefined ? Number.POSITIVE_INFINITY : payload.exp * 1000 });
      return sub;
    } catch (error) {
      if (error instanceof ApiError) throw error;
      const reason = error instanceof joseErrors.JWTExpired ? 'token expired' : 'invalid token';
      throw new ApiError('unauthenticated', reason, { cause: error });
    }
  }

  function adminOperator(token: string): string | null {
    let found: string | null = null;
    // check every token so timing does not reveal which one matched
    for (const [operator, expected] of settings.adminTokens) {
      if (tokensEqual(token, expected) && found === null) found = operator;
    }
    return found;
  }

  async function authenticate(req: Request, allowed: ReadonlyArray<Principal['kind']>): Promise<Principal> {
    const token = bearerToken(req);
    if (!token) throw new ApiError('unauthenticated', 'missing bearer token');
    if (allowed.includes('admin')) {
      // the token is the identity: "admin" for the shared ADMIN_TOKEN, the name of a named token
      // (ADMIN_TOKENS). No header names anyone (X-Operator is ignored): people sign in to the console.
      const operator = adminOperator(token);
      if (operator) return { kind: 'admin', operator, identified: operator !== SHARED_ADMIN_OPERATOR };
    }
    if (allowed.includes('internal') && tokensEqual(token, settings.internalToken)) return { kind: 'internal' };
    if (allowed.includes('user') && token.split('.').length === 3) return { kind: 'user', userId: await userFromToken(token) };
    throw new ApiError('unauthenticated', 'invalid token');
  }

  const require =
    (...allowed: Array<Principal['kind']>) =>
    (req: Request, _res: Response, next: NextFunction) => {
      authenticate(req, allowed).then((principal) => {
        req.principal = principal;
        next();
      }, next);
    };

  return { require, authenticate };
}

export type Auth = ReturnType<typeof createAuth>;

/** Issues a user token (demo user of `npm start`, tests, benchmark). */
export async function signUserToken(secret: string, userId: string, ttlSeconds = 24 * 3600): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(userId)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
    .sign(new TextEncoder().encode(secret));
}
