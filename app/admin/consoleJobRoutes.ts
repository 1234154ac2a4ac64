// The console's jobs: list by task and state (keyset by id), one job with its whole payload, and the
// actions (retry, cancel with a reason, reschedule) through graphile-worker's SQL admin functions,
// each audited in its transaction. Retrying many jobs at once is a dual-control request.
import type { Request, Response, Router } from 'express';
import express from 'express';
import type { CommonQueryMethods, DatabasePool } from 'slonik';
import { ApiError, okEnvelope } from '../http/apiErrors.ts';
import { readBody } from '../http/jsonBody.ts';
import { z } from '../http/zod.ts';
import type { Approvals } from './approvals.ts';
import { recordAudit } from './auditLog.ts';
import { bigintId, bigintParam, consoleAudit, parse, privateResponse } from './consoleHttp.ts';
import { cancelJobs, cronSchedule, findJob, JOB_STATES, jobTasks, jobView, listJobs, rescheduleJobs } from './consoleJobQueries.ts';
import { operatorOf, requireOperator, type SessionSettings } from './consoleSession.ts';
import { retryJobs } from './dashboardQueries.ts';

const BULK_RETRY_MAX = 500;
const DONE = { 'job.retry': 'retried', 'job.cancel': 'cancelled', 'job.reschedule': 'rescheduled' } as const;
const RESCHEDULE_AHEAD_MAX_MS = 30 * 24 * 3_600_000;
export const ListQuery = z.object({
  task: z.string().max(128).optional(),
  state: z.enum(JOB_STATES).optional(),
  before: bigintId.optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
});
const reason = z.string().trim().min(3).max(500);
export const CancelBody = z.object({ reason });
export const RescheduleBody = z.object({ runAt: z.string().datetime({ offset: true }), reason: reason.optional() });
export const BulkRetryBody = z.object({ jobIds: z.array(bigintId).min(2).max(BULK_RETRY_MAX), reason });

export function consoleJobRoutes(deps: { db: DatabasePool; approvals: Approvals; session: SessionSettings }): Router {
  const router = express.Router();
  const { db } = deps;
  const role = (least: 'viewer' | 'operator') => requireOperator(db, deps.session, least);

  router.get('/admin/console/api/jobs', privateResponse, role('viewer'), async (req: Request, res: Response) => {
    const query = parse(ListQuery, req.query);
    const [rows, tasks] = await Promise.all([
      listJobs(db, { task: query.task ?? null, state: query.state ?? null, beforeId: query.before ?? null, limit: query.limit + 1 }),
      jobTasks(db),
    ]);
    const page = rows.slice(0, query.limit);
    res.status(200).json(
      okEnvelope('ok', {
        jobs: page.map(jobView),
        nextBefore: rows.length > query.limit ? page.at(-1)!.jobId.toString() : null,
        tasks,
      }),
    );
  });

  router.get('/admin/console/api/jobs/:jobId', privateResponse, role('viewer'), async (req: Request, res: Response) => {
    const row = await findJob(db, bigintParam(req, 'jobId', 'job'));
    if (!row) throw new ApiError('not_found', 'no such job (a job that completed is deleted)');
    res.status(200).json(okEnvelope('ok', jobView(row)));
  });

  /** One job action: the change and its audit row in one transaction; a job it cannot change is a 409. */
  const act =
    (
      action: 'job.retry' | 'job.cancel' | 'job.reschedule',
      run: (req: Request, jobId: string, tx: CommonQueryMethods) => Promise<Record<string, unknown>>,
    ) =>
    async (req: Request, res: Response) => {
      const jobId = bigintParam(req, 'jobId', 'job');
      const before = await findJob(db, jobId);
      if (!before) throw new ApiError('not_found', 'no such job (a job that completed is deleted)');
      const done = await db.transaction(async (tx) => {
        const details = await run(req, jobId, tx);
        if (!details.changed) return null;
        await recordAudit(
          tx,
          consoleAudit(req, action, `job:${jobId}`, { task: before.task, attemptsBefore: before.attempts, ...details }),
        );
        return details;
      });
      if (!done) throw new ApiError('conflict', 'the job is running (locked by a live worker) or has just finished: nothing changed');
      const after = await findJob(db, jobId);
      res.status(200).json(okEnvelope(DONE[action], after ? jobView(after) : { jobId, state: 'completed' }));
    };

  router.post(
    '/admin/console/api/jobs/:jobId/retry',
    privateResponse,
    role('operator'),
    act('job.retry', async (_req, jobId, tx) => ({ changed: (await retryJobs(tx, [jobId])) === 1 })),
  );
  router.post(
    '/admin/console/api/jobs/:jobId/cancel',
    privateResponse,
    role('operator'),
    act('job.cancel', async (req, jobId, tx) => {
      const body = parse(CancelBody, readBody(req));
      const changed = await cancelJobs(tx, [jobId], `cancelled by ${operatorOf(req).login}: ${body.reason}`);
      return { changed: changed.length === 1, reason: body.reason };
    }),
  );
  router.post(
    '/admin/console/api/jobs/:jobId/reschedule',
    privateResponse,
    role('operator'),
    act('job.reschedule', async (req, jobId, tx) => {
      const body = parse(RescheduleBody, readBody(req));
      const at = Date.parse(body.runAt);
      if (at > Date.now() + RESCHEDULE_AHEAD_MAX_MS) throw new ApiError('invalid_request', 'runAt: at most 30 days ahead');
      const changed = await rescheduleJobs(tx, [jobId], new Date(at).toISOString());
      return { changed: changed.length === 1, runAt: new Date(at).toISOString(), reason: body.reason ?? null };
    }),
  );

  router.post('/admin/console/api/jobs/retry', privateResponse, role('operator'), async (req: Request, res: Response) => {
    const body = parse(BulkRetryBody, readBody(req));
    const jobIds = [...new Set(body.jobIds)];
    const operator = operatorOf(req);
    const approval = await deps.approvals.request(
      { name: operator.login, operatorId: operator.operatorId },
      { kind: 'jobs.retry', subject: `jobs:${jobIds.length}`, payload: { jobIds }, reason: body.reason },
      String(req.id),
    );
    res.status(202).json(okEnvelope('waiting for a second operator', approval));
  });

  router.get('/admin/console/api/cron', privateResponse, role('viewer'), async (_req: Request, res: Response) => {
    res.status(200).json(okEnvelope('ok', { cron: await cronSchedule(db, Date.now()) }));
  });

  return router;
}
