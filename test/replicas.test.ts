// Reads from a real streaming replica (test/helpers/replica.ts): reports through the documented
// command read the replica and say how stale it is; a replica whose replay is paused is refused
// past the bound, and read with a note within it; reconciliation and settlement matching on a
// lagging replica fail instead of inventing breaks, and match once it has caught up.
import { spawn } from 'node:child_process';
import test from 'ava';
import { sql } from 'slonik';
import { v7 as uuidv7 } from 'uuid';
import { z } from 'zod';
import type { Config } from '../app/config.ts';
import { createDatabases, endDatabases, type Databases } from '../app/db/pools.ts';
import { ReplicaLagError } from '../app/db/replicas.ts';
import { createLogger } from '../app/logger.ts';
import { projectRoot } from '../app/paths.ts';
import { runReconciliation } from '../reconcile/reconcileRun.ts';
import { formatCsv, runReport } from '../reconcile/reports.ts';
import { matchSettlements } from '../reconcile/settlementMatch.ts';
import { importStatement, parseStatement } from '../reconcile/settlementStatement.ts';
import { DAY, dayStatement, NEXT_DAY, seedFinanceHistory, type FinanceHistory } from './helpers/financeHistory.ts';
import { REPLICA_BALANCE_DB, REPLICA_LEDGER_DB, startReplicatedCluster, type ReplicatedCluster } from './helpers/replica.ts';
import { testConfig } from './helpers/system.ts';

let cluster: ReplicatedCluster;
let primary: Databases;
let replica: Databases;
let history: FinanceHistory;
let config: Config;
const logger = createLogger({ level: 'silent', name: 'test-replicas' });
const POOL = { poolSizeMax: 4, statementTimeoutMs: 30_000, applicationName: 'withdraw-test' };

test.before(async () => {
  cluster = await startReplicatedCluster();
  const urls = (of: (db: string) => string) => ({ balanceUrl: of(REPLICA_BALANCE_DB), ledgerUrl: of(REPLICA_LEDGER_DB) });
  primary = await createDatabases(urls(cluster.primaryUrl), POOL);
  replica = await createDatabases(urls(cluster.replicaUrl), POOL);
  config = testConfig(urls(cluster.primaryUrl), { REPLICA_WAIT_MS: '500', RECONCILE_SETTLE_MS: '0' });
  history = await seedFinanceHistory(primary);
  await importStatement(
    primary.balance,
    parseStatement(dayStatement(history), null),
    { kind: 'file', name: 'day.csv', importedBy: 'test' },
    { replace: false },
  );
  await cluster.waitForCatchUp();
});
test.after.always(async () => {
  if (primary) await endDatabases(primary);
  if (replica) await endDatabases(replica);
  await cluster?.stop();
});

function report(args: string[], env: Record<string, string> = {}) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn('npm', ['run', '--silent', 'report', '--', ...args], {
      cwd: projectRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        NODE_ENV: 'test',
        LOG_LEVEL: 'warn',
        BALANCE_DATABASE_URL: cluster.primaryUrl(REPLICA_BALANCE_DB),
        LEDGER_DATABASE_URL: cluster.primaryUrl(REPLICA_LEDGER_DB),
        BALANCE_REPORTS_DATABASE_URL: cluster.replicaUrl(REPLICA_BALANCE_DB),
        LEDGER_REPORTS_DATABASE_URL: cluster.replicaUrl(REPLICA_LEDGER_DB),
        ...env,
      },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

const PAYOUTS = ['payouts', '--from', DAY, '--to', NEXT_DAY, '--csv'];

/** A new payout on the primary, created on DAY: what a lagging replica does not show yet. */
async function newPayoutOnPrimary(): Promise<string> {
  const orderId = uuidv7();
  const created = await primary.balance.oneFirst(sql.type(z.object({ outcome: z.string() }))`
    select outcome from withdraw_create('alice', ${uuidv7()}, 'hash', ${history.accounts.alice}, 'bank-1', 100, 'USD',
      ${orderId}, ${uuidv7()}, ${sql.json({ created: { status: 202, body: {} } })})`);
  if (created !== 'created') throw new Error(created);
  await primary.balance.transaction(async (tx) => {
    await tx.query(sql.unsafe`alter table withdraw_orders disable trigger withdraw_orders_guard`);
    await tx.query(sql.unsafe`update withdraw_orders set created_at = ${`${DAY}T21:00:00Z`}::timestamptz where id = ${orderId}`);
    await tx.query(sql.unsafe`alter table withdraw_orders enable trigger withdraw_orders_guard`);
  });
  return orderId;
}

test.serial('when reports are pointed at an up-to-date replica, then they read it, say so, and match the primary', async (t) => {
  const fromPrimary = await runReport('payouts', { from: DAY, to: NEXT_DAY }, primary);
  const fromReplica = await runReport('payouts', { from: DAY, to: NEXT_DAY }, replica);
  t.deepEqual(fromReplica.rows, fromPrimary.rows);
  const csv = await report(PAYOUTS);
  t.is(csv.code, 0, csv.stderr);
  t.is(csv.stdout, formatCsv(fromPrimary));
  t.regex(csv.stderr, /balance: read from a replica, up to date with the primary/);
  t.regex(csv.stderr, /ledger: read from a replica, up to date with the primary/);
});

test.serial(
  'when the replica lags, then a report past the bound is refused, and one within it reads the old data and says how old',
  async (t) => {
    await cluster.pauseReplay();
    try {
      const orderId = await newPayoutOnPrimary();
      const refused = await report(PAYOUTS, { REPORTS_REPLICA_LAG_MAX_MS: '0' });
      t.is(refused.code, 1);
      t.is(refused.stdout, '');
      t.regex(
        refused.stderr,
        /balance: read from a replica that is behind the primary: what it shows is at most [\d.]+ s old .*replay is paused; refused: more than REPORTS_REPLICA_LAG_MAX_MS=0 ms/,
      );
      const stale = await report(PAYOUTS, { REPORTS_REPLICA_LAG_MAX_MS: '86400000' });
      t.is(stale.code, 0, stale.stderr);
      t.regex(stale.stderr, /note: balance: read from a replica that is behind the primary: what it shows is at most [\d.]+ s old/);
      t.false(stale.stdout.includes(orderId), 'the replica does not have the new payout yet');
      t.is(stale.stdout.trimEnd().split('\r\n').length, 1 + 10);
      const onPrimary = await runReport('payouts', { from: DAY, to: NEXT_DAY }, primary);
      t.is(onPrimary.rows.length, 11);
    } finally {
      await cluster.resumeReplay();
    }
    await cluster.waitForCatchUp();
    const caughtUp = await report(PAYOUTS);
    t.is(caughtUp.code, 0, caughtUp.stderr);
    t.is(caughtUp.stdout.trimEnd().split('\r\n').length, 1 + 11);
  },
);

const OpenBreak = z.object({ category: z.string(), subject: z.string(), seenCount: z.number() });
const openBreaks = () =>
  primary.balance.any(sql.type(OpenBreak)`
    select category, subject, seen_count as "seenCount" from reconciliation_breaks where resolved_at is null order by category, subject`);

test.serial(
  'when matching and reconciliation read a lagging replica, then they fail without writing a break, and match once it caught up',
  async (t) => {
    const match = () =>
      matchSettlements({ primary, reads: replica, from: DAY, to: DAY, settleMs: 0, replicaWaitMs: config.database.replicaWaitMs, logger });
    const first = await match();
    t.true(first.findings.some((f) => f.category === 'settlement_ledger_mismatch' && f.transactionId === history.orders.o7!.transactionId));
    const before = await openBreaks();

    await cluster.pauseReplay();
    try {
      // the ledger is repaired on the primary: a lagging replica would still show the break
      const o7 = history.orders.o7!;
      await primary.ledger.query(sql.unsafe`
      select posted from ledger_post(${sql.jsonb([
        {
          source: 'repair',
          transactionId: o7.transactionId,
          kind: 'settle',
          accountId: o7.accountId,
          currency: 'USD',
          amountMinor: '7000',
        },
      ])})`);
      await t.throwsAsync(match(), { instanceOf: ReplicaLagError, message: /has not replayed the primary's .* within 500 ms/ });
      const reconcile = runReconciliation({ databases: primary, reads: replica, psp: null, config, logger, mode: 'full' });
      await t.throwsAsync(reconcile, { instanceOf: ReplicaLagError });
      const lastRun = await primary.balance.one(sql.type(z.object({ error: z.string().nullable() }))`
      select error from reconciliation_runs order by id desc limit 1`);
      t.regex(lastRun.error ?? '', /reconciliation \(balance replica\): the replica has not replayed/);
      t.deepEqual(await openBreaks(), before, 'nothing written: no break raised, none seen again, none cleared');
    } finally {
      await cluster.resumeReplay();
    }
    await cluster.waitForCatchUp();
    const after = await match();
    t.false(after.findings.some((f) => f.category === 'settlement_ledger_mismatch'));
    t.is(after.breaksResolved, 1, 'the ledger break of o7 is cleared');
    const summary = await runReconciliation({ databases: primary, reads: replica, psp: null, config, logger, mode: 'full' });
    t.true(Number(summary.runId) > 0);
  },
);
