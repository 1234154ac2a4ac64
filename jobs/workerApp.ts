// The worker process: graphile-worker (tasks and crons), the outbox relays and the callback
// inbox woken by LISTEN and a poll, a heartbeat, and one shutdown sequence.
import { EventEmitter } from 'node:events';
import os from 'node:os';
import { Logger as GraphileLogger, type ParsedCronItem, run, type Runner, type WorkerEvents } from 'graphile-worker';
import { sql } from 'slonik';
import type { Config } from '../app/config.ts';
import { withApplicationName, type Databases } from '../app/db/pools.ts';
import { drainInboxOnce } from '../app/gateway/inboxDrain.ts';
import { createGatewayService } from '../app/gateway/gatewayService.ts';
import type { PspAdapter } from '../app/gateway/pspAdapter.ts';
import type { Logger } from '../app/logger.ts';
import { createDrainer } from '../app/outbox/drainer.ts';
import { listenForNotifications } from '../app/outbox/notificationListener.ts';
import { balanceOutboxRelay, ledgerOutboxRelay } from '../app/outbox/relays.ts';
import { parsedCronItems, RECOVERY_JOB } from './crontab.ts';
import { buildTaskList, unlockOverdueJobs, unlockStaleWorkers, type Drainers } from './tasks.ts';
import { createWebhookSender } from '../app/webhooks/webhookDelivery.ts';
import { z } from 'zod';

/** How the worker's timer enqueues recovery: the cron's job key and queue (jobs/crontab.ts). */
export function recoveryJobSpec() {
  return { jobKey: RECOVERY_JOB.jobKey, jobKeyMode: 'preserve_run_at', queueName: RECOVERY_JOB.queueName, maxAttempts: 1 } as const;
}

export type WorkerProcess = Readonly<{
  drainers: Drainers;
  /** graphile-worker's pool id: what jobs' locked_by holds, and what the heartbeat records */
  workerId: () => string | null;
  stop: () => Promise<void>;
}>;

/**
 * graphile-worker's log lines, in our logger. Its "info" is one line per completed job, so it goes
 * to debug; job payloads (up to a whole relay batch) are never logged, only what identifies the job.
 */
export function graphileLogger(logger: Logger): GraphileLogger {
  return new GraphileLogger((scope) => (level, message, meta) => {
    const job = (meta as { job?: { id?: string; task_identifier?: string; attempts?: number } } | undefined)?.job;
    const fields = {
      label: scope.label,
      taskIdentifier: scope.taskIdentifier ?? job?.task_identifier,
      jobId: scope.jobId ?? job?.id,
      attempts: job?.attempts,
    };
    if (level === 'error') logger.error(fields, message.split('\n')[0]);
    else if (level === 'warning') logger.warn(fields, message);
    else logger.debug(fields, message);
  });
}

/**
 * Outgoing events: at most WEBHOOK_JOBS_MAX delivery rounds at once, always fewer than the slots
 * (the rest is the money path's); an endpoint has one of them at most, so with two or more a
 * hanging endpoint never delays another.
 */
function webhookSender(config: Config, logger: Logger) {
  const concurrency = config.worker.concurrency;
  const rounds = Math.max(1, Math.min(config.webhooks.jobsMax, concurrency - 1));
  if (rounds < 2) {
    logger.warn(
      { workerConcurrency: concurrency, webhookRounds: rounds },
      'one webhook delivery round per worker: a hanging endpoint delays the others (WORKER_CONCURRENCY of 3 or more avoids it)',
    );
  }
  return createWebhookSender({ ...config.webhooks, jobsMax: rounds });
}

export async function startWorkerProcess(deps: {
  config: Config;
  databases: Databases;
  balanceUrl: string;
  ledgerUrl: string;
  psp: PspAdapter;
  logger: Logger;
  /**
   * graphile-worker stops its runner for good when the database goes away under it (a restart,
   * a failover). A worker without a runner takes no jobs, so the process must die and be
   * restarted (by the PaaS, or app/supervisor.ts); worker.ts exits here.
   */
  onRunnerLost?: (error: unknown) => void;
  /**
   * The recurring work (default: jobs/crontab.ts). A test passes [] for a worker no minute
   * boundary can disturb, and adds a cron's job itself when it wants that work done.
   */
  cronItems?: ParsedCronItem[];
}): Promise<WorkerProcess> {
  const { config, databases, logger } = deps;
  const settings = config.worker;

  const drainers: Drainers = {
    balanceOutbox: createDrainer({ name: 'balance-outbox' }, balanceOutboxRelay(databases.balance, settings.relayBatchSizeMax), logger),
    ledgerOutbox: createDrainer(
      { name: 'ledger-outbox' },
      ledgerOutboxRelay({
        ledger: databases.ledger,
        balance: databases.balance,
        batchSizeMax: settings.relayBatchSizeMax,
        submitBatchSizeMax: config.gateway.submitBatchSizeMax,
      }),
      logger,
    ),
    gatewayInbox: createDrainer(
      { name: 'gateway-inbox' },
      () =>
        drainInboxOnce(
          databases.balance,
          {
            batchSizeMax: settings.inboxBatchSizeMax,
            parkAfterAttempts: settings.inboxParkAfterAttempts,
            retryBaseMs: settings.inboxRetryBaseMs,
            retryMaxMs: settings.inboxRetryMaxMs,
          },
          logger,
        ),
      logger,
    ),
  };
  const wakeAll = () => {
    for (const drainer of Object.values(drainers)) drainer.wake();
  };

  const gateway = createGatewayService({
    balance: databases.balance,
    ledger: databases.ledger,
    psp: deps.psp,
    settings: config.gateway,
    logger,
  });

  const webhooks = webhookSender(config, logger);

  let workerId: string | null = null;
  const events: WorkerEvents = new EventEmitter() as WorkerEvents;
  events.on('pool:create', ({ workerPool }) => {
    workerId = workerPool.id;
  });
  events.on('job:failed', ({ job, error }) => {
    logger.warn({ err: error, jobId: job.id, taskIdentifier: job.task_identifier, attempts: job.attempts }, 'job failed');
  });

  const runner: Runner = await run({
    // its own pool, named so that its backends can be told from the task pools' (pg_stat_activity)
    connectionString: withApplicationName(deps.balanceUrl, 'withdraw-worker-queue'),
    concurrency: settings.concurrency,
    maxPoolSize: settings.concurrency + 4,
    noHandleSignals: true,
    pollInterval: 1_000,
    taskList: buildTaskList({ config, databases, gateway, psp: deps.psp, drainers, logger, webhooks }),
    parsedCronItems: deps.cronItems ?? parsedCronItems(),
    logger: graphileLogger(logger),
    events,
    preset: {
      worker: {
        completeJobBatchDelay: 0,
        failJobBatchDelay: 0,
        gracefulShutdownAbortTimeout: Math.max(1_000, settings.shutdownGraceMs - 5_000),
        ...(settings.localQueueSize > 1 ? { localQueue: { size: settings.localQueueSize } } : {}),
      },
    },
  });

  let stopping: Promise<void> | null = null;
  runner.promise.then(
    () => {
      if (!stopping) deps.onRunnerLost?.(new Error('the graphile-worker runner stopped by itself'));
    },
    (error: unknown) => {
      if (!stopping) deps.onRunnerLost?.(error);
    },
  );

  const heartbeat = async () => {
    if (!workerId) return;
    await databases.balance.query(sql.unsafe`
      insert into worker_heartbeats (worker_id, hostname, pid) values (${workerId}, ${os.hostname()}, ${process.pid})
      on conflict (worker_id) do update set last_seen_at = now()`);
    // A runner that holds jobs longer than any task may run (tasks time out first) is wedged,
    // e.g. a local queue whose fetch was cut by a database restart: beating on would keep those
    // jobs locked for good, so the process gives up and is restarted, and its jobs freed.
    const wedged = await databases.balance.oneFirst(sql.type(z.object({ n: z.number() }))`
      select count(*)::int as n from graphile_worker.jobs
       where locked_by = ${workerId} and locked_at < now() - make_interval(secs => ${settings.jobLockMaxMs / 1000})`);
    if (wedged > 0 && !stopping)
      deps.onRunnerLost?.(new Error(`${wedged} jobs locked by this worker for longer than WORKER_JOB_LOCK_MAX_MS`));
  };
  await heartbeat().catch((error: unknown) => logger.warn({ err: error }, 'heartbeat failed'));
  const heartbeatTimer = setInterval(() => {
    heartbeat().catch((error: unknown) => logger.warn({ err: error }, 'heartbeat failed'));
  }, settings.heartbeatIntervalMs);

  const balanceListener = listenForNotifications({
    url: deps.balanceUrl,
    name: 'worker-balance',
    logger,
    channels: { balance_outbox: () => drainers.balanceOutbox.wake(), gateway_inbox: () => drainers.gatewayInbox.wake() },
    onConnected: wakeAll,
  });
  const ledgerListener = listenForNotifications({
    url: deps.ledgerUrl,
    name: 'worker-ledger',
    logger,
    channels: { ledger_outbox: () => drainers.ledgerOutbox.wake() },
    onConnected: () => drainers.ledgerOutbox.wake(),
  });
  // The watchdog runs on a timer in every worker, outside the job queue it watches: a wedged
  // queue must not be able to stop it. It frees the jobs of workers that stopped beating, and,
  // a little later than a live worker would notice it itself, jobs locked for too long.
  const watchdogTimer = setInterval(
    () => {
      void (async () => {
        const dead = await unlockStaleWorkers(databases, settings.staleAfterMs);
        const overdue = await unlockOverdueJobs(databases, settings.jobLockMaxMs + 2 * settings.heartbeatIntervalMs + 5_000);
        if (dead.length + overdue.length > 0) logger.warn({ deadWorkers: dead, overdueJobs: overdue.length }, 'watchdog released jobs');
      })().catch((error: unknown) => logger.warn({ err: error }, 'watchdog failed'));
    },
    Math.max(1_000, settings.heartbeatIntervalMs * 2),
  );

  // NOTIFY is best effort; a poll bounds how long a lost notification can delay anything
  const pollTimer = setInterval(wakeAll, settings.relayPollIntervalMs);
  // recovery more often than the once-a-minute cron, when configured so: the same job as the
  // cron's (one key, one queue), so a run already queued or running is never doubled
  const recoveryTimer =
    config.recovery.intervalMs < 60_000
      ? setInterval(() => {
          runner
            .addJob(RECOVERY_JOB.task, {}, recoveryJobSpec())
            .catch((error: unknown) => logger.warn({ err: error, task: RECOVERY_JOB.task }, 'could not enqueue recovery'));
        }, config.recovery.intervalMs)
      : null;
  wakeAll();

  return {
    drainers,
    workerId: () => workerId,
    stop: () => {
      stopping ??= (async () => {
        clearInterval(pollTimer);
        clearInterval(heartbeatTimer);
        clearInterval(watchdogTimer);
        if (recoveryTimer) clearInterval(recoveryTimer);
        await Promise.allSettled([balanceListener.close(), ledgerListener.close()]);
        await runner.stop();
        await Promise.allSettled(Object.values(drainers).map((drainer) => drainer.stop()));
        await webhooks.close().catch(() => {});
        if (workerId) {
          await databases.balance.query(sql.unsafe`delete from worker_heartbeats where worker_id = ${workerId}`).catch(() => {});
        }
      })();
      return stopping;
    },
  };
}
