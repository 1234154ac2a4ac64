// Managing operator accounts: from the console by an operator with the admin role, and through the
// admin API with an admin token (which is how the first operator is made: POST /admin/operators).
// Disabling an operator or setting a password ends their sessions. Every change is audited.
import type { Request, Response, Router } from 'express';
import express from 'express';
import type { DatabasePool } from 'slonik';
import type { Config } from '../config.ts';
import { ApiError, okEnvelope } from '../http/apiErrors.ts';
import type { Auth } from '../http/auth.ts';
import { ALWAYS, AnyData, errors, json, okResponse, SECURITY, type OpenApiExtension } from '../http/openapiShapes.ts';
import { readBody } from '../http/jsonBody.ts';
import { z } from '../http/zod.ts';
import { recordAudit } from './auditLog.ts';
import { type Actor, bigintParam, consoleActor, parse, privateResponse } from './consoleHttp.ts';
import { requireOperator } from './consoleSession.ts';
import { sessionSettings } from './consoleAuthRoutes.ts';
import {
  findOperator,
  insertOperator,
  listOperators,
  LOGIN_PATTERN,
  OPERATOR_ROLES,
  operatorView,
  revokeOperatorSessions,
  setOperatorPassword,
  updateOperator,
} from './operatorQueries.ts';
import { hashPassword, PASSWORD_LENGTH_MAX, passwordProblem } from './passwords.ts';

export const CreateOperatorSchema = z
  .object({
    login: z.string().regex(LOGIN_PATTERN, '2-64 characters of [a-z0-9_.-], starting with a letter or digit'),
    displayName: z.string().trim().min(1).max(128),
    role: z.enum(OPERATOR_ROLES),
    password: z.string().max(PASSWORD_LENGTH_MAX),
  })
  .openapi('CreateOperatorRequest');
export const UpdateOperatorSchema = z
  .object({
    role: z.enum(OPERATOR_ROLES).optional(),
    displayName: z.string().trim().min(1).max(128).optional(),
    disabled: z.boolean().optional(),
    unlock: z.literal(true).optional(),
  })
  .refine((body) => Object.values(body).some((value) => value !== undefined), 'give role, displayName, disabled or unlock')
  .openapi('UpdateOperatorRequest');
export const SetPasswordSchema = z.object({ password: z.string().max(PASSWORD_LENGTH_MAX) }).openapi('SetOperatorPasswordRequest');

type Deps = Readonly<{ db: DatabasePool; auth: Auth; config: Config }>;

function tokenActor(req: Request): Actor {
  if (req.principal?.kind !== 'admin') throw new Error('admin route without admin authentication');
  return { name: req.principal.operator, operatorId: null };
}

async function createOperator(deps: Deps, actor: Actor, req: Request) {
  const body = parse(CreateOperatorSchema, readBody(req));
  // the admin tokens' names appear in the audit trail as they are: a person may not take one
  if (body.login === 'admin' || [...deps.config.auth.operatorTokens.keys()].some((name) => name.toLowerCase() === body.login)) {
    throw new ApiError('invalid_request', 'login: reserved for an admin token');
  }
  const problem = passwordProblem(body.password, body.login);
  if (problem) throw new ApiError('invalid_request', `password: ${problem}`);
  const passwordHash = await hashPassword(body.password);
  return deps.db.transaction(async (tx) => {
    const row = await insertOperator(tx, { ...body, passwordHash, createdBy: actor.name });
    if (row === 'login_taken') throw new ApiError('conflict', 'login: an operator with this login exists');
    await recordAudit(tx, {
      operator: actor.name,
      operatorId: actor.operatorId,
      action: 'operator.create',
      subject: `operator:${row.operatorId}`,
      details: { login: row.login, displayName: row.displayName, role: row.role },
      requestId: String(req.id),
    });
    return operatorView(row);
  });
}

async function changeOperator(deps: Deps, actor: Actor, req: Request) {
  const operatorId = bigintParam(req, 'operatorId', 'operator');
  const body = parse(UpdateOperatorSchema, readBody(req));
  if (actor.operatorId === operatorId && (body.role !== undefined || body.disabled !== undefined)) {
    throw new ApiError('invalid_state', 'an operator cannot change their own role or disable themselves: ask another admin');
  }
  return deps.db.transaction(async (tx) => {
    const before = await findOperator(tx, operatorId);
    if (!before) throw new ApiError('not_found', 'no such operator');
    const sessionsEnded = body.disabled ? await revokeOperatorSessions(tx, operatorId) : 0;
    const row = await updateOperator(tx, operatorId, body);
    if (!row) throw new ApiError('not_found', 'no such operator');
    await recordAudit(tx, {
      operator: actor.name,
      operatorId: actor.operatorId,
      action: 'operator.update',
      subject: `operator:${operatorId}`,
      details: {
        login: row.login,
        change: body,
        before: { role: before.role, displayName: before.displayName, disabled: before.disabledAt !== null },
        sessionsEnded,
      },
      requestId: String(req.id),
    });
    return operatorView(row);
  });
}

async function resetPassword(deps: Deps, actor: Actor, req: Request) {
  const operatorId = bigintParam(req, 'operatorId', 'operator');
  const body = parse(SetPasswordSchema, readBody(req));
  const target = await findOperator(deps.db, operatorId);
  if (!target) throw new ApiError('not_found', 'no such operator');
  if (actor.operatorId === operatorId) throw new ApiError('invalid_state', 'change your own password with your current one');
  const problem = passwordProblem(body.password, target.login);
  if (problem) throw new ApiError('invalid_request', `password: ${problem}`);
  const hash = await hashPassword(body.password);
  return deps.db.transaction(async (tx) => {
    if (!(await setOperatorPassword(tx, operatorId, hash))) throw new ApiError('not_found', 'no such operator');
    const sessionsEnded = await revokeOperatorSessions(tx, operatorId);
    await recordAudit(tx, {
      operator: actor.name,
      operatorId: actor.operatorId,
      action: 'operator.password_reset',
      subject: `operator:${operatorId}`,
      details: { login: target.login, sessionsEnded },
      requestId: String(req.id),
    });
    return { operatorId, sessionsEnded };
  });
}

/** The same four operations, for a console admin (session) and for an admin token. */
function mount(router: Router, base: string, guard: express.RequestHandler, deps: Deps, actorOf: (req: Request) => Actor) {
  router.get(base, privateResponse, guard, async (_req: Request, res: Response) => {
    res.status(200).json(okEnvelope('ok', { operators: (await listOperators(deps.db)).map(operatorView) }));
  });
  router.post(base, privateResponse, guard, async (req: Request, res: Response) => {
    res.status(201).json(okEnvelope('created', await createOperator(deps, actorOf(req), req)));
  });
  router.patch(`${base}/:operatorId`, privateResponse, guard, async (req: Request, res: Response) => {
    res.status(200).json(okEnvelope('updated', await changeOperator(deps, actorOf(req), req)));
  });
  router.post(`${base}/:operatorId/password`, privateResponse, guard, async (req: Request, res: Response) => {
    res.status(200).json(okEnvelope('password set', await resetPassword(deps, actorOf(req), req)));
  });
}

export function operatorRoutes(deps: Deps): Router {
  const router = express.Router();
  mount(router, '/admin/operators', deps.auth.require('admin'), deps, tokenActor);
  const consoleAdmin = requireOperator(deps.db, sessionSettings(deps.config.console), 'admin');
  mount(router, '/admin/console/api/operators', consoleAdmin, deps, consoleActor);
  return router;
}

/** The admin-token operator API in the OpenAPI document (the console's own API: app/admin/consoleOpenApi.ts). */
export const operatorsOpenApi: OpenApiExtension = (registry) => {
  const security = SECURITY.admin;
  const tags = ['console'];
  const operatorId = z.object({ operatorId: z.string().regex(/^\d+$/) });
  registry.registerPath({
    method: 'get',
    path: '/admin/operators',
    operationId: 'listOperators',
    tags,
    summary: 'List console operators',
    security,
    responses: { 200: okResponse('the operators', AnyData), ...errors(401, ...ALWAYS, 503) },
  });
  registry.registerPath({
    method: 'post',
    path: '/admin/operators',
    operationId: 'createOperator',
    tags,
    summary: 'Create a console operator (how the first one is made)',
    security,
    request: { body: json(CreateOperatorSchema) },
    responses: { 201: okResponse('created', AnyData), ...errors(400, 401, 409, ...ALWAYS, 503) },
  });
  registry.registerPath({
    method: 'patch',
    path: '/admin/operators/{operatorId}',
    operationId: 'updateOperator',
    tags,
    summary: "Change an operator's role or name, disable or enable, unlock",
    security,
    request: { params: operatorId, body: json(UpdateOperatorSchema) },
    responses: { 200: okResponse('updated', AnyData), ...errors(400, 401, 404, ...ALWAYS, 503) },
  });
  registry.registerPath({
    method: 'post',
    path: '/admin/operators/{operatorId}/password',
    operationId: 'setOperatorPassword',
    tags,
    summary: "Set an operator's password (ends their sessions)",
    security,
    request: { params: operatorId, body: json(SetPasswordSchema) },
    responses: { 200: okResponse('password set', AnyData), ...errors(400, 401, 404, ...ALWAYS, 503) },
  });
};
