// `npm run reconcile [-- --full] [--json]`: one reconciliation run on demand (the worker's cron
// runs the same incrementally). Exits 1 when the run found breaks, 0 when clean, 2 on errors.
import { parseArgs } from 'node:util';
import { resolveDatabaseUrls } from '../app/db/databaseUrls.ts';
import { createDatabases, endDatabases } from '../app/db/pools.ts';
import { openReadDatabases } from '../app/db/replicas.ts';
import { createPspHttpAdapter } from '../app/gateway/pspHttpAdapter.ts';
import { loadConfigOrExit } from '../app/lifecycle.ts';
import { createLogger } from '../app/logger.ts';
import { runReconciliation } from './reconcileRun.ts';

const { values } = parseArgs({ options: { full: { type: 'boolean', default: false }, json: { type: 'boolean', default: false } } });
const config = loadConfigOrExit();
// stdout is the report (and --json must parse): log lines go to stderr
const logger = createLogger({
  level: config.logLevel === 'info' ? 'warn' : config.logLevel,
  name: 'reconcile',
  destination: process.stderr,
});

try {
  const urls = await resolveDatabaseUrls(config, (message) => logger.warn(message));
  const poolOptions = { poolSizeMax: 4, statementTimeoutMs: 600_000, applicationName: 'withdraw-reconcile' };
  const databases = await createDatabases(urls, poolOptions);
  // reads from the replicas when BALANCE_/LEDGER_REPORTS_DATABASE_URL are set; breaks go to the primary
  const replicas = await openReadDatabases(
    { balance: config.database.reportsBalanceUrl, ledger: config.database.reportsLedgerUrl },
    databases,
    poolOptions,
  );
  const psp = config.psp.baseUrl ? createPspHttpAdapter({ baseUrl: config.psp.baseUrl, ...config.gateway }) : null;
  try {
    const summary = await runReconciliation({
      databases,
      reads: replicas.reads,
      psp,
      config,
      logger,
      mode: values.full ? 'full' : 'incremental',
    });
    if (values.json) {
      process.stdout.write(`${JSON.stringify(summary, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`);
    } else {
      process.stdout.write(
        `reconciliation run ${summary.runId} (${summary.mode}) up to ${summary.checkedUntil}` +
          `${summary.checkedFrom ? ` from ${summary.checkedFrom}` : ''}: ${summary.accountsChecked} accounts, ` +
          `${summary.ordersChecked} orders, ${summary.providerChecked} checked with the provider` +
          `${psp ? '' : ' (PSP_BASE_URL unset: provider not checked)'}; ${summary.findings.length} breaks, ${summary.breaksResolved} resolved\n`,
      );
      for (const f of summary.findings) process.stdout.write(`  ${f.category} ${f.subject}: expected ${f.expected}, actual ${f.actual}\n`);
    }
    process.exitCode = summary.findings.length > 0 ? 1 : 0;
  } finally {
    await psp?.close();
    await replicas.end();
    await endDatabases(databases);
    await urls.cluster?.stop();
  }
} catch (error) {
  process.stderr.write(`reconcile failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 2;
}
