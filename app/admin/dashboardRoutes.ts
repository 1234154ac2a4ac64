// The admin-token dashboard API (/admin/api/*): overview, jobs, retries, breaks, for scripts and
// API clients. People use the operations console (GET /admin/, consoleRouters.ts) with their own
// sessions.
import type { Request, Response, Router } from 'express';
import express from 'express';
import type { Databases } from '../db/pools.ts';
import { ApiError, okEnvelope } from '../http/apiErrors.ts';
import type { Auth } from '../http/auth.ts';
import { readBody } from '../http/jsonBody.ts';
import { recordAudit } from './auditLog.ts';
import { describeZodError, z } from '../http/zod.ts';
import { JOB_STATES, listBreaks, listJobs, overview, retryJobs } from './dashboardQueries.ts';

const LIST_LIMIT_MAX = 500;
const ListQuery = z.object({
  state: z.enum(JOB_STATES).default('failed'),
  limit: z.coerce.number().int().min(1).max(LIST_LIMIT_MAX).default(100),
});
const BreaksQuery = z.object({
  open: z.enum(['true', 'false']).default('true'),
  limit: z.coerce.number().int().min(1).max(LIST_LIMIT_MAX).default(100),
});
const INT8_MAX = 2n ** 63n - 1n;
// a job id is a bigint: one past its range is refused here, not by PostgreSQL (a 500)
// (zod runs a refinement even after the regex failed, hence the second test of the pattern)
const jobId = z
  .string()
  .regex(/^\d{1,19}$/)
  .refine((id) => !/^\d{1,19}$/.test(id) || BigInt(id) <= INT8_MAX, 'must be at most 9223372036854775807');
const RetryBody = z.object({ jobIds: z.array(jobId).min(1).max(LIST_LIMIT_MAX) }).openapi('RetryJobsRequest');

function parse<T extends z.ZodTypeAny>(schema: T, value: unknown): z.infer<T> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new ApiError('invalid_request', describeZodError(parsed.error));
  return parsed.data;
}

export function dashboardRoutes(deps: { auth: Auth; databases: Databases }): Router {
  const router = express.Router();
  const admin = deps.auth.require('admin');

  router.get('/admin/api/overview', admin, async (_req: Request, res: Response) => {
    res.status(200).json(okEnvelope('ok', await overview(deps.databases)));
  });

  router.get('/admin/api/jobs', admin, async (req: Request, res: Response) => {
    const query = parse(ListQuery, req.query);
    res.status(200).json(okEnvelope('ok', { state: query.state, jobs: await listJobs(deps.databases.balance, query.state, query.limit) }));
  });

  router.post('/admin/api/jobs/retry', admin, async (req: Request, res: Response) => {
    const body = parse(RetryBody, readBody(req));
    const operator = req.principal?.kind === 'admin' ? req.principal.operator : 'admin';
    const retried = await deps.databases.balance.transaction(async (tx) => {
      const count = await retryJobs(tx, body.jobIds);
      await recordAudit(tx, {
        operator,
        action: 'jobs.retry',
        subject: `jobs:${body.jobIds.length}`,
        details: { jobIds: body.jobIds, retried: count },
        requestId: String(req.id),
      });
      return count;
    });
    res.status(200).json(okEnvelope('retried', { retried }));
  });

  router.get('/admin/api/breaks', admin, async (req: Request, res: Response) => {
    const query = parse(BreaksQuery, req.query);
    res.status(200).json(okEnvelope('ok', { breaks: await listBreaks(deps.databases.balance, query.open === 'true', query.limit) }));
  });

  return router;
}
