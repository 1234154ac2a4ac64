// Signing operators in and out of the console, and their own password. A failed sign-in says the
// same thing whatever was wrong (no such login, wrong password, locked, disabled) and costs the same
// time; CONSOLE_LOGIN_FAILURES_MAX failures in a row lock the account for CONSOLE_LOCKOUT_MINUTES.
import type { Request, Response, Router } from 'express';
import express from 'express';
import type { DatabasePool } from 'slonik';
import type { Config } from '../config.ts';
import { ApiError, okEnvelope } from '../http/apiErrors.ts';
import { readBody } from '../http/jsonBody.ts';
import { z } from '../http/zod.ts';
import { recordAudit } from './auditLog.ts';
import { consoleAudit, parse, privateResponse } from './consoleHttp.ts';
import {
  clearedSessionCookie,
  crossOrigin,
  csrfTokenOf,
  newSessionId,
  operatorOf,
  requireOperator,
  sessionCookie,
  sessionHash,
} from './consoleSession.ts';
import {
  insertSession,
  LOGIN_PATTERN,
  operatorForLogin,
  passwordHashOf,
  recordLoginFailure,
  recordLoginSuccess,
  revokeOperatorSessions,
  revokeSession,
  setOperatorPassword,
} from './operatorQueries.ts';
import { hashPassword, PASSWORD_LENGTH_MAX, passwordNeedsRehash, passwordProblem, verifyPassword } from './passwords.ts';

export const LoginBody = z.object({ login: z.string().max(64), password: z.string().max(PASSWORD_LENGTH_MAX) });
export const PasswordChangeBody = z.object({ currentPassword: z.string().max(PASSWORD_LENGTH_MAX), newPassword: z.string() });
const LOGIN_REFUSED = 'wrong login or password (or the account is locked or disabled)';

export type ConsoleAuthDeps = Readonly<{ db: DatabasePool; settings: Config['console'] }>;

export function sessionSettings(settings: Config['console']) {
  return { idleMinutes: settings.sessionIdleMinutes, maxHours: settings.sessionMaxHours };
}

function sessionReply(req: Request) {
  const operator = operatorOf(req);
  return {
    operator: { operatorId: operator.operatorId, login: operator.login, displayName: operator.displayName, role: operator.role },
    csrfToken: operator.csrfToken,
    expiresAt: new Date(operator.expiresAt).toISOString(),
    idleExpiresAt: new Date(operator.idleExpiresAt).toISOString(),
  };
}

async function signIn(deps: ConsoleAuthDeps, req: Request, res: Response) {
  if (crossOrigin(req)) throw new ApiError('forbidden', 'cross-origin request refused');
  const body = parse(LoginBody, readBody(req));
  const login = body.login.trim().toLowerCase();
  const found = LOGIN_PATTERN.test(login) ? await operatorForLogin(deps.db, login) : null;
  const usable = found?.usable ? found : null;
  const matches = await verifyPassword(usable?.passwordHash ?? null, body.password);
  if (!usable || !matches) {
    if (found) {
      await deps.db.transaction(async (tx) => {
        const counted = usable
          ? await recordLoginFailure(tx, found.operatorId, deps.settings.loginFailuresMax, deps.settings.lockoutMinutes)
          : null;
        // whoever tried is not known: the attempt is recorded against the account it named
        await recordAudit(tx, {
          operator: 'anonymous',
          action: 'operator.login_failed',
          subject: `operator:${found.operatorId}`,
          details: { login, reason: usable ? 'wrong password' : 'locked or disabled', clientIp: req.ip ?? null, ...(counted ?? {}) },
          requestId: String(req.id),
        });
      });
    }
    throw new ApiError('unauthenticated', LOGIN_REFUSED);
  }
  const sessionId = newSessionId();
  const rehashed = passwordNeedsRehash(usable.passwordHash) ? await hashPassword(body.password) : null;
  const expiresAt = await deps.db.transaction(async (tx) => {
    await recordLoginSuccess(tx, usable.operatorId);
    if (rehashed) await setOperatorPassword(tx, usable.operatorId.toString(), rehashed);
    const at = await insertSession(tx, {
      idHash: sessionHash(sessionId),
      operatorId: usable.operatorId,
      maxHours: deps.settings.sessionMaxHours,
      clientIp: req.ip ?? null,
      userAgent: req.get('user-agent') ?? null,
    });
    await recordAudit(tx, {
      operator: login,
      operatorId: usable.operatorId,
      action: 'operator.login',
      subject: `operator:${usable.operatorId}`,
      details: { clientIp: req.ip ?? null },
      requestId: String(req.id),
    });
    return at;
  });
  res.setHeader('Set-Cookie', sessionCookie(sessionId, deps.settings.sessionMaxHours * 3600));
  res.status(200).json(okEnvelope('signed in', { login, csrfToken: csrfTokenOf(sessionId), expiresAt: new Date(expiresAt).toISOString() }));
}

export function consoleAuthRoutes(deps: ConsoleAuthDeps): Router {
  const router = express.Router();
  const signedIn = requireOperator(deps.db, sessionSettings(deps.settings), 'viewer');

  router.post('/admin/console/api/login', privateResponse, (req: Request, res: Response) => signIn(deps, req, res));

  router.get('/admin/console/api/session', privateResponse, signedIn, (req: Request, res: Response) => {
    res.status(200).json(okEnvelope('ok', sessionReply(req)));
  });

  router.post('/admin/console/api/logout', privateResponse, signedIn, async (req: Request, res: Response) => {
    const operator = operatorOf(req);
    await deps.db.transaction(async (tx) => {
      if (await revokeSession(tx, operator.sessionHash)) {
        await recordAudit(tx, consoleAudit(req, 'operator.logout', `operator:${operator.operatorId}`, {}));
      }
    });
    res.setHeader('Set-Cookie', clearedSessionCookie());
    res.status(200).json(okEnvelope('signed out', null));
  });

  router.post('/admin/console/api/session/password', privateResponse, signedIn, async (req: Request, res: Response) => {
    const operator = operatorOf(req);
    const body = parse(PasswordChangeBody, readBody(req));
    const current = await passwordHashOf(deps.db, operator.operatorId);
    if (!(await verifyPassword(current, body.currentPassword))) throw new ApiError('forbidden', 'currentPassword: wrong password');
    const problem = passwordProblem(body.newPassword, operator.login);
    if (problem) throw new ApiError('invalid_request', `newPassword: ${problem}`);
    const hash = await hashPassword(body.newPassword);
    const ended = await deps.db.transaction(async (tx) => {
      await setOperatorPassword(tx, operator.operatorId, hash);
      // other sessions end: whoever else knew the old password is signed out
      const count = await revokeOperatorSessions(tx, operator.operatorId, operator.sessionHash);
      await recordAudit(tx, consoleAudit(req, 'operator.password', `operator:${operator.operatorId}`, { otherSessionsEnded: count }));
      return count;
    });
    res.status(200).json(okEnvelope('password changed', { otherSessionsEnded: ended }));
  });

  return router;
}
