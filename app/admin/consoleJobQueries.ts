// Jobs in the console: graphile-worker keeps no history and no status column, so a job's state is
// derived (running = locked; failed = attempts used up; retrying = attempts left after a failure;
// queued = never tried). Lists are keyset-paged by id, newest first. Actions go through
// graphile-worker's SQL admin functions, which leave a job locked by a live worker alone:
// reschedule_jobs (a retry is "now, attempts 0": the JS helper would silently ignore the 0) and
// permanently_fail_jobs (a cancel, with the operator's reason as its last error).
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { CRONTAB, parsedCronItems } from '../../jobs/crontab.ts';

export const JOB_STATES = ['queued', 'running', 'retrying', 'failed'] as const;
export type JobState = (typeof JOB_STATES)[number];
export const JOB_PAGE_MAX = 200;
const PAYLOAD_SHOWN_MAX = 4_000;
const TRANSACTIONS_SHOWN_MAX = 20;
const CRON_LOOKAHEAD_MINUTES = 8 * 24 * 60;

const stateFilter: Record<JobState, ReturnType<typeof sql.fragment>> = {
  queued: sql.fragment`j.locked_at is null and j.attempts = 0`,
  running: sql.fragment`j.locked_at is not null`,
  retrying: sql.fragment`j.locked_at is null and j.attempts > 0 and j.attempts < j.max_attempts`,
  failed: sql.fragment`j.locked_at is null and j.attempts >= j.max_attempts`,
};

const JobRow = z.object({
  jobId: z.bigint(),
  task: z.string(),
  queue: z.string().nullable(),
  attempts: z.number(),
  maxAttempts: z.number(),
  runAt: z.number(),
  lockedAt: z.number().nullable(),
  lockedBy: z.string().nullable(),
  lastError: z.string().nullable(),
  key: z.string().nullable(),
  createdAt: z.number(),
  updatedAt: z.number(),
  payload: z.string().nullable(),
  payloadBytes: z.number(),
  transactionIds: z.array(z.string()),
  transactionCount: z.number(),
});
export type JobRow = z.infer<typeof JobRow>;

const jobColumns = (payloadMax: number) => sql.fragment`
  j.id as "jobId", t.identifier as task, q.queue_name as queue, j.attempts, j.max_attempts as "maxAttempts",
  j.run_at as "runAt", j.locked_at as "lockedAt", j.locked_by as "lockedBy", j.last_error as "lastError", j.key,
  j.created_at as "createdAt", j.updated_at as "updatedAt",
  left(j.payload::text, ${payloadMax}) as payload, octet_length(j.payload::text) as "payloadBytes",
  -- the orders a job is about: payloads carry transactionId (single jobs) or lists of them (batches)
  -- (strict: lax mode would visit each array's items twice; silent: a member without one is skipped)
  coalesce((select array_agg(x #>> '{}') from (select x from jsonb_path_query(j.payload::jsonb, 'strict $.**.transactionId', '{}', true) x
             limit ${TRANSACTIONS_SHOWN_MAX}) s), '{}') as "transactionIds",
  (select count(*)::int from jsonb_path_query(j.payload::jsonb, 'strict $.**.transactionId', '{}', true)) as "transactionCount"`;

const jobsFrom = sql.fragment`
  graphile_worker._private_jobs j
  join graphile_worker._private_tasks t on t.id = j.task_id
  left join graphile_worker._private_job_queues q on q.id = j.job_queue_id`;

export function jobState(row: Pick<JobRow, 'lockedAt' | 'attempts' | 'maxAttempts'>): JobState {
  if (row.lockedAt !== null) return 'running';
  if (row.attempts === 0) return 'queued';
  return row.attempts >= row.maxAttempts ? 'failed' : 'retrying';
}

export function jobView(row: JobRow) {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return {
    jobId: row.jobId.toString(),
    task: row.task,
    queue: row.queue,
    state: jobState(row),
    attempts: row.attempts,
    maxAttempts: row.maxAttempts,
    runAt: iso(row.runAt),
    lockedAt: iso(row.lockedAt),
    lockedBy: row.lockedBy,
    lastError: row.lastError,
    key: row.key,
    createdAt: iso(row.createdAt),
    updatedAt: iso(row.updatedAt),
    payload: row.payload,
    payloadTruncated: row.payload !== null && row.payloadBytes > row.payload.length,
    transactionIds: row.transactionIds,
    transactionCount: row.transactionCount,
  };
}

export async function listJobs(
  db: CommonQueryMethods,
  query: { task: string | null; state: JobState | null; beforeId: string | null; limit: number },
): Promise<readonly JobRow[]> {
  return db.any(sql.type(JobRow)`
    select ${jobColumns(PAYLOAD_SHOWN_MAX)} from ${jobsFrom}
     where ${query.task ? sql.fragment`t.identifier = ${query.task}` : sql.fragment`true`}
       and ${query.state ? stateFilter[query.state] : sql.fragment`true`}
       and ${query.beforeId ? sql.fragment`j.id < ${query.beforeId}` : sql.fragment`true`}
     order by j.id desc limit ${Math.min(query.limit, JOB_PAGE_MAX)}`);
}

export async function findJob(db: CommonQueryMethods, jobId: string): Promise<JobRow | null> {
  return db.maybeOne(sql.type(JobRow)`select ${jobColumns(1_000_000)} from ${jobsFrom} where j.id = ${jobId}`);
}

export async function jobTasks(db: CommonQueryMethods): Promise<readonly string[]> {
  return db.anyFirst(sql.type(z.object({ identifier: z.string() }))`
    select identifier from graphile_worker._private_tasks order by identifier limit 500`);
}

const ChangedRow = z.object({ id: z.bigint() });

/** Cancels jobs for good: attempts used up, the reason as last error. Returns the ids it changed (not the running ones). */
export async function cancelJobs(db: CommonQueryMethods, jobIds: readonly string[], reason: string): Promise<string[]> {
  const rows = await db.anyFirst(sql.type(ChangedRow)`
    select id from graphile_worker.permanently_fail_jobs(${sql.array(jobIds, 'int8')}, ${reason})`);
  return rows.map(String);
}

/** Moves jobs to run at `runAt`, their attempts kept. Returns the ids it changed. */
export async function rescheduleJobs(db: CommonQueryMethods, jobIds: readonly string[], runAtIso: string): Promise<string[]> {
  const rows = await db.anyFirst(sql.type(ChangedRow)`
    select id from graphile_worker.reschedule_jobs(${sql.array(jobIds, 'int8')}, run_at := ${runAtIso}::timestamptz)`);
  return rows.map(String);
}

const KnownCronRow = z.object({ identifier: z.string(), knownSince: z.number(), lastExecution: z.number().nullable() });

function nextRun(match: (digest: { min: number; hour: number; date: number; month: number; dow: number }) => boolean, fromMs: number) {
  const start = Math.floor(fromMs / 60_000) * 60_000 + 60_000;
  for (let i = 0; i < CRON_LOOKAHEAD_MINUTES; i += 1) {
    const at = new Date(start + i * 60_000);
    const digest = {
      min: at.getUTCMinutes(),
      hour: at.getUTCHours(),
      date: at.getUTCDate(),
      month: at.getUTCMonth() + 1,
      dow: at.getUTCDay(),
    };
    if (match(digest)) return at.toISOString();
  }
  return null;
}

/** The crontab (jobs/crontab.ts) with each entry's last run (graphile-worker's known crontabs) and next run. */
export async function cronSchedule(db: CommonQueryMethods, nowMs: number) {
  const known = await db.any(sql.type(KnownCronRow)`
    select identifier, known_since as "knownSince", last_execution as "lastExecution"
      from graphile_worker._private_known_crontabs order by identifier`);
  const byId = new Map(known.map((row) => [row.identifier, row]));
  // the five schedule fields of each crontab line, by its ?id=
  const patterns = new Map(
    CRONTAB.split('\n').flatMap((line) => {
      const id = /[?&]id=([^&\s]+)/.exec(line)?.[1];
      return id ? [[id, line.trim().split(/\s+/).slice(0, 5).join(' ')] as const] : [];
    }),
  );
  return parsedCronItems().map((item) => {
    const row = byId.get(item.identifier);
    return {
      identifier: item.identifier,
      task: item.task,
      pattern: patterns.get(item.identifier) ?? null,
      lastRunAt: row?.lastExecution ? new Date(row.lastExecution).toISOString() : null,
      knownSince: row ? new Date(row.knownSince).toISOString() : null,
      nextRunAt: nextRun(item.match, nowMs),
    };
  });
}
