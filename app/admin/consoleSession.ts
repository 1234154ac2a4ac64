// Console sessions: a random id in an HttpOnly, Secure, SameSite=Strict cookie; the database keeps
// only its SHA-256. Every unsafe request also carries the session's CSRF token in a header (the
// console's script reads it from GET /admin/console/api/session), and a cross-origin Origin is
// refused. Expiry: absolute (CONSOLE_SESSION_MAX_HOURS from sign-in) and idle
// (CONSOLE_SESSION_IDLE_MINUTES since the operator's last own request: the page's background
// refreshes, marked with X-Console-Refresh, do not keep a session alive).
import { createHash, randomBytes } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { DatabasePool } from 'slonik';
import { ApiError } from '../http/apiErrors.ts';
import { tokensEqual } from '../http/auth.ts';
import { findLiveSession, roleAtLeast, touchSession, type OperatorRole } from './operatorQueries.ts';

export const SESSION_COOKIE = '__Host-withdraw_console';
export const CSRF_HEADER = 'x-csrf-token';
export const REFRESH_HEADER = 'x-console-refresh';
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const SESSION_ID_PATTERN = /^[A-Za-z0-9_-]{43}$/;

export type ConsoleOperator = Readonly<{
  operatorId: string;
  login: string;
  displayName: string;
  role: OperatorRole;
  sessionHash: Buffer;
  csrfToken: string;
  expiresAt: number;
  idleExpiresAt: number;
}>;

declare module 'express-serve-static-core' {
  interface Request {
    consoleOperator?: ConsoleOperator;
  }
}

export type SessionSettings = Readonly<{ idleMinutes: number; maxHours: number }>;

export function newSessionId(): string {
  return randomBytes(32).toString('base64url');
}

export function sessionHash(sessionId: string): Buffer {
  return createHash('sha256').update(sessionId).digest();
}

/** The CSRF token of a session: derived from its id, so nothing more is stored, and useless without the cookie. */
export function csrfTokenOf(sessionId: string): string {
  return createHash('sha256').update(`csrf:${sessionId}`).digest('base64url');
}

export function sessionCookie(sessionId: string, maxAgeSeconds: number): string {
  return `${SESSION_COOKIE}=${sessionId}; Path=/; Max-Age=${maxAgeSeconds}; HttpOnly; Secure; SameSite=Strict`;
}

export function clearedSessionCookie(): string {
  return `${SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict`;
}

export function sessionIdFrom(req: Request): string | null {
  const header = req.headers.cookie;
  if (typeof header !== 'string' || header.length > 8192) return null;
  for (const part of header.split(';')) {
    const at = part.indexOf('=');
    if (at < 0 || part.slice(0, at).trim() !== SESSION_COOKIE) continue;
    const value = part.slice(at + 1).trim();
    return SESSION_ID_PATTERN.test(value) ? value : null;
  }
  return null;
}

/** A request whose Origin (when the browser sends one) is not this server's. */
export function crossOrigin(req: Request): boolean {
  const origin = req.get('origin');
  if (origin === undefined) return false;
  const host = req.get('host');
  try {
    return host === undefined || new URL(origin).host !== host;
  } catch {
    return true;
  }
}

/**
 * Middleware: the request comes from a live console session of an operator with at least `least`;
 * unsafe methods also need the CSRF header and a same-origin Origin. Otherwise 401 (no session:
 * nothing about the data is returned) or 403.
 */
export function requireOperator(db: DatabasePool, settings: SessionSettings, least: OperatorRole) {
  return (req: Request, res: Response, next: NextFunction) => {
    resolveOperator(db, settings, req, res, least).then(() => next(), next);
  };
}

async function resolveOperator(db: DatabasePool, settings: SessionSettings, req: Request, res: Response, least: OperatorRole) {
  const sessionId = sessionIdFrom(req);
  if (sessionId === null) throw new ApiError('unauthenticated', 'sign in to the console');
  const hash = sessionHash(sessionId);
  const session = await findLiveSession(db, hash, settings.idleMinutes);
  if (!session) {
    res.setHeader('Set-Cookie', clearedSessionCookie());
    throw new ApiError('unauthenticated', 'the session has expired or was ended: sign in again');
  }
  const csrfToken = csrfTokenOf(sessionId);
  if (!SAFE_METHODS.has(req.method)) {
    const presented = req.get(CSRF_HEADER);
    if (typeof presented !== 'string' || !tokensEqual(presented, csrfToken)) {
      throw new ApiError('forbidden', `missing or wrong ${CSRF_HEADER} header`);
    }
    if (crossOrigin(req)) throw new ApiError('forbidden', 'cross-origin request refused');
  }
  if (!roleAtLeast(session.role, least)) {
    throw new ApiError('forbidden', `this needs the ${least} role; ${session.login} is ${session.role}`);
  }
  if (session.stale && req.get(REFRESH_HEADER) === undefined) await touchSession(db, hash);
  req.consoleOperator = {
    operatorId: session.operatorId.toString(),
    login: session.login,
    displayName: session.displayName,
    role: session.role,
    sessionHash: hash,
    csrfToken,
    expiresAt: session.expiresAt,
    idleExpiresAt: session.idleExpiresAt,
  };
}

/** The operator of a request that passed requireOperator. */
export function operatorOf(req: Request): ConsoleOperator {
  const operator = req.consoleOperator;
  if (!operator) throw new Error('console route without requireOperator');
  return operator;
}
