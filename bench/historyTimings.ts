// The timed half of `npm run bench:history` (bench/historyBench.ts runs it as a child process,
// under the exclusive lock when asked): each operation on the history the parent generated, at
// the instant the history ends (the jobs' clock seam), so every size sees the same recent window.
// Prints one JSON line: the figures of one size.
import autocannon from 'autocannon';
import { sql } from 'slonik';
import { v7 as uuidv7 } from 'uuid';
import { z } from 'zod';
import { loadConfig } from '../app/config.ts';
import { createDatabases, endDatabases } from '../app/db/pools.ts';
import { createPspHttpAdapter } from '../app/gateway/pspHttpAdapter.ts';
import { signUserToken } from '../app/http/auth.ts';
import { createLogger } from '../app/logger.ts';
import { startWebProcess } from '../app/webApp.ts';
import { runPruning } from '../jobs/pruning.ts';
import { runProviderChecks } from '../reconcile/providerChecks.ts';
import { runReconciliation } from '../reconcile/reconcileRun.ts';
import { runRecovery } from '../reconcile/recovery.ts';
import { runReport } from '../reconcile/reports.ts';
import { HISTORY_SECRETS, type HistoryPlan, type TimingInput, type TimingResult } from './historyGenerate.ts';

const log = (line: string) => process.stderr.write(`${line}\n`);

async function timed<T>(label: string, fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const started = performance.now();
  const value = await fn();
  const ms = Math.round(performance.now() - started);
  log(`  ${label}: ${ms} ms`);
  return { ms, value };
}

async function median(label: string, runs: number, fn: () => Promise<unknown>): Promise<number> {
  const all: number[] = [];
  for (let i = 0; i < runs; i += 1) all.push((await timed(`${label} (run ${i + 1})`, fn)).ms);
  all.sort((a, b) => a - b);
  return all[Math.floor(all.length / 2)]!;
}

async function acceptP99(baseUrl: string, plan: HistoryPlan, durationSeconds: number): Promise<number> {
  // USD wallets (every fourth), each with its own user
  const users = await Promise.all(
    Array.from({ length: 50 }, async (_, i) => {
      const a = (i * 4) % plan.accounts;
      return { token: await signUserToken(HISTORY_SECRETS.AUTH_JWT_SECRET, `hist-${a}`) };
    }),
  );
  let next = 0;
  const result = await autocannon({
    url: baseUrl,
    connections: 4,
    overallRate: 40,
    duration: durationSeconds,
    requests: [
      {
        method: 'POST',
        path: '/withdraw',
        setupRequest: (request) => {
          const user = users[next++ % users.length]!;
          return {
            ...request,
            headers: { 'content-type': 'application/json', authorization: `Bearer ${user.token}`, 'idempotent-key': uuidv7() },
            body: JSON.stringify({ toAccountId: 'history-bank', amount: '1.00' }),
          };
        },
      },
    ],
  });
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`POST /withdraw: ${result.non2xx} non-2xx, ${result.errors} errors`);
  log(`  POST /withdraw at 40/s: ${result.requests.total} requests, p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms`);
  return result.latency.p99;
}

async function main(input: TimingInput): Promise<TimingResult> {
  const { plan } = input;
  const config = loadConfig({
    NODE_ENV: 'production',
    LOG_LEVEL: 'warn',
    PORT: '0',
    BALANCE_DATABASE_URL: input.balanceUrl,
    LEDGER_DATABASE_URL: input.ledgerUrl,
    PSP_BASE_URL: input.simUrl,
    ...HISTORY_SECRETS,
  });
  const logger = createLogger({ level: 'warn', name: 'history-bench' });
  const databases = await createDatabases(input, {
    poolSizeMax: 16,
    statementTimeoutMs: 3_600_000,
    applicationName: 'withdraw-history-bench',
  });
  const psp = createPspHttpAdapter({ baseUrl: input.simUrl, ...config.gateway });
  const now = new Date(plan.anchor);
  const daysAgo = (n: number) => new Date(now.getTime() - n * 86_400_000).toISOString();
  try {
    log(`timing ${plan.orders} orders:`);
    const recovery = await timed('recovery run', () => runRecovery({ databases, config, psp, logger, now }));
    log(`    ${JSON.stringify(recovery.value)}`);
    const reconcile = await timed('incremental reconciliation run', () =>
      runReconciliation({ databases, psp, config, logger, mode: 'incremental', now }),
    );
    log(
      `    ${reconcile.value.ordersChecked} orders, ${reconcile.value.accountsChecked} accounts, ${reconcile.value.findings.length} breaks`,
    );
    const provider = await timed('provider checks (one reconcile__provider run)', () =>
      runProviderChecks({ databases, psp, config, logger, now }),
    );
    const asked = provider.value.retried.asked + provider.value.first.asked + provider.value.recheck.asked;
    const providerChecksPerSec = Math.round(asked / (provider.ms / 1000));
    log(`    ${asked} checks: ${providerChecksPerSec} a second`);
    const prune = await timed('pruning run', () => runPruning({ databases, config, now }));
    log(`    ${JSON.stringify(prune.value)}`);
    const trialBalanceMs = await median('trial balance', input.runs, () => runReport('trial-balance', {}, databases));
    const balanceAtMs = await median('trial balance 45 days ago', input.runs, () =>
      runReport('trial-balance', { to: daysAgo(45) }, databases),
    );
    const busiest = await databases.balance.oneFirst(sql.type(z.object({ id: z.string() }))`
      select id::text as id from accounts where user_id = 'hist-0'`);
    const statementMs = await median('account statement, 30 days', input.runs, () =>
      runReport('account-statement', { account: busiest, from: daysAgo(30) }, databases),
    );
    const web = await startWebProcess({ config, databases, balanceUrl: input.balanceUrl, logger });
    let acceptP99Ms: number;
    try {
      acceptP99Ms = await acceptP99(web.url, plan, input.runs > 1 ? 15 : 5);
    } finally {
      await web.close(1_000);
    }
    return {
      orders: plan.orders,
      recoveryRunMs: recovery.ms,
      reconcileRunMs: reconcile.ms,
      pruneRunMs: prune.ms,
      trialBalanceMs,
      balanceAtMs,
      statementMs,
      acceptP99Ms,
      providerChecksPerSec,
    };
  } finally {
    await psp.close();
    await endDatabases(databases);
  }
}

if (process.argv[2]) {
  main(JSON.parse(process.argv[2]) as TimingInput).then(
    (result) => {
      process.stdout.write(`${JSON.stringify(result)}\n`);
      process.exit(0);
    },
    (error: unknown) => {
      log(`timings failed: ${error instanceof Error ? error.stack : String(error)}`);
      process.exit(1);
    },
  );
}
