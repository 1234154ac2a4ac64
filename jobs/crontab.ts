// Recurring work. Each line has a fixed identifier (`id=`): graphile-worker fires it once per
// tick across all worker processes; `jobKey` folds a backlog of the same cron into one job.
import { parseCrontab } from 'graphile-worker';

/**
 * Recovery, whoever schedules it (the cron below, each worker's timer): one task, one job key (a
 * queued run folds the next), one queue (graphile-worker runs one job of a queue at a time), and
 * the run itself holds an advisory lock (reconcile/recovery.ts, runRecovery).
 */
export const RECOVERY_JOB = { task: 'recovery__run', jobKey: 'recovery', queueName: 'recovery' } as const;

export const CRONTAB = [
  // relay whatever a lost NOTIFY left behind (each process also polls between ticks)
  '* * * * * outbox__sweep ?id=outbox_sweep&max=1&jobKey=cron_outbox_sweep',
  // free the jobs of workers that stopped beating (graphile-worker alone would wait 4 hours)
  '* * * * * worker__watchdog ?id=worker_watchdog&max=1&jobKey=cron_worker_watchdog',
  // resume init orders that stalled; ask the provider about processing and manual orders whose
  // query is due; the worker's timer enqueues the same job more often (RECOVERY_INTERVAL_MS)
  `* * * * * ${RECOVERY_JOB.task} ?id=recovery_run&max=1&jobKey=${RECOVERY_JOB.jobKey}&queue=${RECOVERY_JOB.queueName}`,
  // three-way reconciliation of what changed since the previous run, and the provider's word on
  // final orders (RECONCILE_PROVIDER_CHECKS_MAX a minute): one queue, never two runs at once
  '*/5 * * * * reconcile__run ?id=reconcile_run&max=1&jobKey=cron_reconcile_run&queue=reconcile',
  '* * * * * reconcile__provider ?id=reconcile_provider&max=1&jobKey=cron_reconcile_provider&queue=reconcile',
  // the provider's settlement statement of yesterday (UTC), imported and matched once the day is over
  '20 1 * * * settlement__import_yesterday ?id=settlement_import_yesterday&max=1&jobKey=cron_settlement_import_yesterday',
  // delete what is past its retention (idempotency keys, relayed rows of both outboxes, applied
  // callbacks), each table in bounded batches: PRUNE_ROWS_PER_RUN_MAX rows a minute per table
  '* * * * * maintenance__prune ?id=maintenance_prune&max=1&jobKey=maintenance_prune&queue=maintenance_prune',
  // outgoing events: wake endpoints whose deliveries wait without a job (a lost job, a lease run out)
  '* * * * * webhook__sweep ?id=webhook_sweep&max=1&jobKey=cron_webhook_sweep',
  // the daily-withdrawals rollup: built once, then the minute's deltas folded into it (the report
  // reads rollup plus deltas, so it is exact either way; the fold keeps the deltas few)
  '* * * * * reports__daily_fold ?id=reports_daily_fold&max=1&jobKey=cron_reports_daily_fold&queue=reports_daily_fold',
  // close each UTC day of the ledger (per-account and per-currency checkpoints) once it is over
  '*/10 * * * * ledger__checkpoint ?id=ledger_checkpoint&max=1&jobKey=cron_ledger_checkpoint',
].join('\n');

export const parsedCronItems = () => parseCrontab(CRONTAB);
