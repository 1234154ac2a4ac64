// The task list. Every task validates its payload first: jobs outlive deploys.
import type { JobHelpers, Task, TaskList } from 'graphile-worker';
import { sql } from 'slonik';
import { z } from 'zod';
import type { Config } from '../app/config.ts';
import type { Databases } from '../app/db/pools.ts';
import type { GatewayService } from '../app/gateway/gatewayService.ts';
import { LedgerPostPayload, postLedgerEvents } from '../app/ledger/ledgerPosting.ts';
import type { Logger } from '../app/logger.ts';
import type { Drainer } from '../app/outbox/drainer.ts';
import type { PspAdapter } from '../app/gateway/pspAdapter.ts';
import { runRecovery } from '../reconcile/recovery.ts';
import { runProviderChecks } from '../reconcile/providerChecks.ts';
import { runReconciliation } from '../reconcile/reconcileRun.ts';
import type { WebhookSender } from '../app/webhooks/webhookDelivery.ts';
import { sweepDeliveries } from '../app/webhooks/webhookQueries.ts';
import { runLedgerCheckpoints } from '../reconcile/ledgerCheckpoints.ts';
import { runDailyFold } from '../reconcile/dailyRollup.ts';
import { dayBefore, importFromProvider } from '../reconcile/settlementImport.ts';
import { runPruning } from './pruning.ts';

export { pruneIdempotencyKeys } from './pruning.ts';

/** After this many failed attempts a batch is split in two, so one bad event cannot hold back the rest. */
export const LEDGER_SPLIT_AFTER_ATTEMPTS = 3;

export type Drainers = Readonly<{ balanceOutbox: Drainer; ledgerOutbox: Drainer; gatewayInbox: Drainer }>;

export type TaskDeps = Readonly<{
  config: Config;
  databases: Databases;
  gateway: GatewayService;
  psp: PspAdapter;
  drainers: Drainers;
  logger: Logger;
  webhooks: WebhookSender;
}>;

const GatewaySubmitPayload = z.object({
  transactionId: z.string().uuid(),
  heldJournalId: z.number().int().positive().nullable().optional(),
  source: z.string().max(64).optional(),
});

const WebhookDeliverPayload = z.object({ endpointId: z.string().uuid() });

const GatewaySubmitBatchPayload = z.object({
  submits: z.array(GatewaySubmitPayload).min(1).max(1_000),
  source: z.string().max(64).optional(),
});

const CronPayload = z
  .object({
    _cron: z
      .object({ ts: z.string().datetime({ offset: true }) })
      .passthrough()
      .optional(),
  })
  .passthrough();

function parsePayload<T extends z.ZodTypeAny>(schema: T, payload: unknown, helpers: JobHelpers): z.infer<T> {
  const parsed = schema.safeParse(payload);
  if (!parsed.success) {
    // a malformed job never becomes valid: fail it loudly; it stays visible on the dashboard
    throw new Error(`invalid ${helpers.job.task_identifier} payload: ${parsed.error.message.slice(0, 500)}`);
  }
  return parsed.data;
}

export function buildTaskList(deps: TaskDeps): TaskList {
  const { databases, drainers, config } = deps;

  const ledgerPost: Task = async (payload, helpers) => {
    const { events } = parsePayload(LedgerPostPayload, payload, helpers);
    try {
      const rows = await postLedgerEvents(databases.ledger, events);
      if (rows.some((row) => row.kind === 'hold' && row.posted)) drainers.ledgerOutbox.wake();
    } catch (error) {
      if (helpers.job.attempts >= LEDGER_SPLIT_AFTER_ATTEMPTS && events.length > 1) {
        const middle = Math.ceil(events.length / 2);
        await helpers.addJobs([
          { identifier: 'ledger__post', payload: { events: events.slice(0, middle) } },
          { identifier: 'ledger__post', payload: { events: events.slice(middle) } },
        ]);
        deps.logger.warn({ err: error, jobId: helpers.job.id, events: events.length }, 'ledger batch failed again; split in two');
        return;
      }
      throw error;
    }
  };

  const gatewaySubmit: Task = async (payload, helpers) => {
    const job = parsePayload(GatewaySubmitPayload, payload, helpers);
    const outcome = await deps.gateway.submit(job, helpers.abortSignal);
    helpers.logger.debug(`gateway__submit ${job.transactionId}: ${outcome}`);
  };

  const gatewaySubmitBatch: Task = async (payload, helpers) => {
    const { submits } = parsePayload(GatewaySubmitBatchPayload, payload, helpers);
    const counts = await deps.gateway.submitBatch(submits, helpers.abortSignal);
    helpers.logger.debug(`gateway__submit_batch of ${submits.length}: ${JSON.stringify(counts)}`);
  };

  const outboxSweep: Task = async () => {
    await Promise.all([drainers.balanceOutbox.drain(), drainers.ledgerOutbox.drain(), drainers.gatewayInbox.drain()]);
  };

  const workerWatchdog: Task = async () => {
    const unlocked = await unlockStaleWorkers(databases, config.worker.staleAfterMs);
    if (unlocked.length > 0) deps.logger.warn({ workers: unlocked }, 'released the jobs of dead workers');
    const freed = await unlockOverdueJobs(databases, config.worker.jobLockMaxMs);
    if (freed.length > 0) deps.logger.warn({ jobIds: freed }, 'released jobs locked for too long');
  };

  // one job for every table; the old per-table task names stay for jobs queued before a deploy
  const prune: Task = async () => {
    const run = await runPruning({ databases, config });
    if (Object.values(run).some((n) => n > 0)) deps.logger.info(run, 'pruned');
  };

  const recovery: Task = async () => {
    const run = await runRecovery({ databases, config, psp: deps.psp, logger: deps.logger, onApplied: () => drainers.gatewayInbox.wake() });
    if (run.kind === 'busy') deps.logger.debug('recovery: another run holds the lock');
  };

  const reconcileRun: Task = async () => {
    await runReconciliation({ databases, psp: deps.psp, config, logger: deps.logger, mode: 'incremental' });
  };

  const reconcileProvider: Task = async () => {
    await runProviderChecks({ databases, psp: deps.psp, config, logger: deps.logger });
  };

  const ledgerCheckpoint: Task = async () => {
    const m = config.maintenance;
    const run = await runLedgerCheckpoints({
      ledger: databases.ledger,
      settleMs: m.checkpointSettleMs,
      daysMax: m.checkpointDaysPerRunMax,
      statementTimeoutMs: m.statementTimeoutMs,
    });
    if (run.closed.length > 0) deps.logger.info({ closed: run.closed.map((d) => d.day), nextDay: run.nextDay }, 'ledger days closed');
    if (run.stoppedBy === 'out_of_order') deps.logger.error({ nextDay: run.nextDay }, 'ledger checkpoints: an earlier day is not closed');
  };

  const dailyFold: Task = async () => {
    const run = await runDailyFold({ pool: databases.balance });
    if (run.rebuilt)
      deps.logger.info({ buckets: run.rebuilt.buckets, orders: run.rebuilt.orders.toString() }, 'daily-withdrawals rollup built');
    if (run.leftOver) deps.logger.warn({ folded: run.folded }, 'daily-withdrawals rollup: deltas left for the next run');
  };

  /** Yesterday's statement: the cron's own tick says which day, so a backfilled tick imports its own day. */
  const settlementImportYesterday: Task = async (payload, helpers) => {
    const { _cron } = parsePayload(CronPayload, payload ?? {}, helpers);
    const tick = _cron ? new Date(_cron.ts) : new Date();
    const date = dayBefore(tick);
    const result = await importFromProvider({
      databases,
      config,
      logger: deps.logger,
      psp: deps.psp,
      date,
      importedBy: 'cron',
      replace: false,
      now: tick,
    });
    if (result.outcome.kind === 'conflicting') {
      deps.logger.warn({ date, statementId: result.outcome.statementId.toString() }, 'the provider re-issued a different statement');
    }
  };

  const webhookDeliver: Task = async (payload, helpers) => {
    const { endpointId } = parsePayload(WebhookDeliverPayload, payload, helpers);
    const round = await deps.webhooks.deliverRound(databases.balance, endpointId, helpers.abortSignal);
    if (round.disabled) deps.logger.warn({ endpointId }, 'webhook endpoint disabled after failing too long');
  };

  const webhookSweep: Task = async () => {
    const woken = await sweepDeliveries(databases.balance);
    if (woken > 0) deps.logger.info({ endpoints: woken }, 'webhook sweep woke endpoints with deliveries waiting');
  };

  const tasks: TaskList = {
    ledger__post: ledgerPost,
    recovery__run: recovery,
    // the names before one job did all of recovery: jobs queued by an older build still run
    recovery__stale_init: recovery,
    recovery__stale_processing: recovery,
    reconcile__run: reconcileRun,
    settlement__import_yesterday: settlementImportYesterday,
    reconcile__provider: reconcileProvider,
    maintenance__prune: prune,
    idempotency__prune: prune,
    gateway__submit: gatewaySubmit,
    gateway__submit_batch: gatewaySubmitBatch,
    outbox__sweep: outboxSweep,
    worker__watchdog: workerWatchdog,
    outbox__prune: prune,
    ledger__checkpoint: ledgerCheckpoint,
    reports__daily_fold: dailyFold,
    webhook__deliver: webhookDeliver,
    webhook__sweep: webhookSweep,
  };
  return Object.fromEntries(
    Object.entries(tasks).map(([name, task]) => [name, withTimeout(name, task as Task, config.worker.taskTimeoutMs)]),
  );
}

export class TaskTimeoutError extends Error {
  override readonly name = 'TaskTimeoutError';
}

/**
 * A task that hangs (an await on a connection that died without an error) must not hold its
 * worker slot and its job lock forever: after timeoutMs it fails and is retried.
 */
function withTimeout(name: string, task: Task, timeoutMs: number): Task {
  return (payload, helpers) => {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new TaskTimeoutError(`${name} did not finish within ${timeoutMs} ms`)), timeoutMs);
    });
    return Promise.race([Promise.resolve(task(payload, helpers)), deadline]).finally(() => clearTimeout(timer)) as ReturnType<Task>;
  };
}

/**
 * Jobs locked for longer than lockMaxMs are unlocked one by one, whoever holds them. graphile-worker
 * has no public function for a single job, hence the update of its private table.
 */
export async function unlockOverdueJobs(databases: Databases, lockMaxMs: number): Promise<string[]> {
  const rows = await databases.balance.anyFirst(sql.type(z.object({ id: z.bigint() }))`
    update graphile_worker._private_jobs set locked_at = null, locked_by = null
     where locked_at < now() - make_interval(secs => ${lockMaxMs / 1000})
    returning id`);
  return rows.map(String);
}

/**
 * Jobs locked by a worker whose heartbeat is older than staleAfterMs (or that never beat) and
 * locked for at least that long are unlocked, so another worker runs them now.
 */
export async function unlockStaleWorkers(databases: Databases, staleAfterMs: number): Promise<string[]> {
  return databases.balance.transaction(async (tx) => {
    const stale = await tx.anyFirst(sql.type(z.object({ lockedBy: z.string() }))`
      select distinct j.locked_by as "lockedBy" from graphile_worker.jobs j
       where j.locked_by is not null
         and j.locked_at < now() - make_interval(secs => ${staleAfterMs / 1000})
         and not exists (select 1 from worker_heartbeats h
                          where h.worker_id = j.locked_by
                            and h.last_seen_at > now() - make_interval(secs => ${staleAfterMs / 1000}))`);
    if (stale.length > 0) {
      await tx.query(sql.unsafe`select graphile_worker.force_unlock_workers(${sql.array(stale, 'text')})`);
    }
    await tx.query(sql.unsafe`
      delete from worker_heartbeats where last_seen_at < now() - make_interval(secs => ${(staleAfterMs * 10) / 1000})`);
    return [...stale];
  });
}
