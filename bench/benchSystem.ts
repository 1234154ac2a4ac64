// The benchmark's system: an embedded PostgreSQL of its own (durable as in production, with
// pg_stat_statements), both databases migrated, the ceiling database, then web, workers and the
// provider simulator as real processes (app/supervisor.ts), and the meters that watch them.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { v4 as uuidv4 } from 'uuid';
import { loadConfig, processEnvironment, type Config } from '../app/config.ts';
import { EMBEDDED_BALANCE_DB, EMBEDDED_LEDGER_DB } from '../app/db/databaseUrls.ts';
import {
  EMBEDDED_PASSWORD,
  EMBEDDED_USER,
  ensureDatabase,
  startEmbeddedCluster,
  temporaryDataDir,
  type EmbeddedCluster,
} from '../app/db/embeddedPostgres.ts';
import { migrateAll } from '../app/db/migrate.ts';
import { signUserToken } from '../app/http/auth.ts';
import { createLogger } from '../app/logger.ts';
import { launchSystem, type LaunchedSystem } from '../app/supervisor.ts';
import { prepareCeilingDatabase } from './ceiling.ts';
import { createCpuMeter } from './cpuMeter.ts';
import type { BenchUser } from './loadgen.ts';
import { createCounters } from './pgCounters.ts';

export const CEILING_DB = 'bench_ceiling';

/**
 * What the children run with. Recovery looks at processing orders after 20 s (production: 300 s)
 * so that a dropped callback of the fault phase ends within the phase; everything else is the
 * production default.
 */
export const BENCH_CHILD_ENV: Readonly<Record<string, string>> = {
  PROCESSING_STALE_MS: '20000',
  RECOVERY_INTERVAL_MS: '2000',
  PROCESSING_QUERY_INTERVAL_MS: '2000',
};

export type BenchSystem = Awaited<ReturnType<typeof startBenchSystem>>;

export async function startBenchSystem(options: { workers: number; log: (line: string) => void; childEnv: Record<string, string> }) {
  const dataDir = await temporaryDataDir('withdraw-bench-');
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const cluster: EmbeddedCluster = await startEmbeddedCluster({
    dataDir,
    port,
    persistent: false,
    durable: true,
    maxConnections: 300,
    settings: {
      shared_preload_libraries: 'pg_stat_statements',
      'pg_stat_statements.track': 'all',
      'pg_stat_statements.max': '10000',
      'pg_stat_statements.track_utility': 'off',
    },
    log: (line) => {
      if (/FATAL|PANIC/.test(line)) options.log(`postgres: ${line}`);
    },
  });
  const adminUrl = cluster.url('postgres');
  await ensureDatabase(adminUrl, EMBEDDED_BALANCE_DB);
  await ensureDatabase(adminUrl, EMBEDDED_LEDGER_DB);
  const urls = { balanceUrl: cluster.url(EMBEDDED_BALANCE_DB), ledgerUrl: cluster.url(EMBEDDED_LEDGER_DB) };
  await migrateAll(urls);
  await prepareCeilingDatabase(adminUrl, EMBEDDED_BALANCE_DB, CEILING_DB);
  const connect = async (url: string) => {
    const client = new pg.Client({ connectionString: url, application_name: 'withdraw-bench' });
    await client.connect();
    return client;
  };
  const admin = await connect(adminUrl);
  await admin.query('create extension if not exists pg_stat_statements');
  const balance = await connect(urls.balanceUrl);
  const ledger = await connect(urls.ledgerUrl);
  const postmasterPid = Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  const logDir = path.dirname(dataDir);
  const config: Config = loadConfig({
    ...processEnvironment(),
    PORT: '0',
    PSP_SIM_PORT: '0',
    LOG_LEVEL: processEnvironment().LOG_LEVEL ?? 'warn',
    NODE_ENV: 'production',
    BALANCE_DATABASE_URL: urls.balanceUrl,
    LEDGER_DATABASE_URL: urls.ledgerUrl,
    PSP_BASE_URL: '',
  });
  const logger = createLogger({ level: 'warn', name: 'bench' });
  options.log(
    `starting: PostgreSQL (port ${port}, data ${dataDir}), web, ${options.workers} worker(s), simulator; their logs: ${logDir}/<child>.log`,
  );
  const system: LaunchedSystem = await launchSystem({
    config,
    logger,
    workers: options.workers,
    stdio: { logDir },
    autoRestart: false,
    env: { ...BENCH_CHILD_ENV, ...options.childEnv },
  });
  await system.waitForReady(120_000);
  const childPids = (prefix: string) =>
    system.children.filter((c) => c.name.startsWith(prefix) && c.process?.pid).map((c) => c.process!.pid!);
  const cpu = createCpuMeter({
    componentPids: () => ({ web: childPids('web'), worker: childPids('worker-'), psp: childPids('psp-sim'), loadgen: [process.pid] }),
    postmasterPid,
    admin,
  });
  const counters = createCounters({
    admin,
    clients: { balance, ledger },
    dbNames: { balance: EMBEDDED_BALANCE_DB, ledger: EMBEDDED_LEDGER_DB },
  });
  return {
    cluster,
    port,
    dataDir,
    config,
    system,
    urls,
    admin,
    balance,
    ledger,
    cpu,
    counters,
    childPids,
    pgConnection: { host: '127.0.0.1', port, user: EMBEDDED_USER, password: EMBEDDED_PASSWORD },
    stop: async () => {
      await cpu.stop();
      await Promise.allSettled([admin.end(), balance.end(), ledger.end()]);
      await system.stop();
      await cluster.stop();
    },
  };
}

async function adminPost(webUrl: string, token: string, path: string, body: unknown) {
  const response = await fetch(`${webUrl}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = (await response.json()) as { code: number; data: Record<string, string> };
  if (json.code !== 0) throw new Error(`${path}: ${JSON.stringify(json)}`);
  return json.data;
}

export async function seedUsers(bench: BenchSystem, count: number): Promise<BenchUser[]> {
  const { system, config } = bench;
  const users: BenchUser[] = [];
  for (let i = 0; i < count; i += 1) {
    const userId = `bench-${i}`;
    const account = await adminPost(system.webUrl, config.auth.adminToken, '/admin/accounts', { userId, currency: 'USD' });
    await adminPost(system.webUrl, config.auth.adminToken, `/admin/accounts/${account.accountId}/credits`, {
      amount: '100000000.00',
      transactionId: uuidv4(),
    });
    users.push({ userId, token: await signUserToken(config.auth.jwtSecret, userId) });
  }
  return users;
}

/** Nothing left to do anywhere: no open order short of manual, no unrelayed outbox row, no pending callback, no pipeline job. */
export async function waitForQuiet(bench: BenchSystem, timeoutMs: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    const { rows } = await bench.balance.query<{ n: number }>(`
      select ((select count(*) from withdraw_orders where status in ('init', 'processing'))
            + (select count(*) from outbox where relayed_at is null)
            + (select count(*) from gateway_inbox where processed_at is null)
            + (select count(*) from graphile_worker.jobs
                where task_identifier in ('ledger__post', 'gateway__submit', 'gateway__submit_batch')))::int as n`);
    const ledger = await bench.ledger.query<{ n: number }>('select count(*)::int as n from outbox where relayed_at is null');
    const pending = rows[0]!.n + ledger.rows[0]!.n;
    if (pending === 0) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`not quiet after ${timeoutMs} ms (${pending} pending)`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Waits (at most `timeoutMs`) until the machine's other users leave it alone: less than a tenth of
 * a core busy outside the benchmark's own processes for two seconds in a row. Returns how long it waited.
 */
export async function waitForQuietMachine(bench: BenchSystem, timeoutMs: number, log: (line: string) => void): Promise<number> {
  const started = Date.now();
  let quietSeconds = 0;
  let warned = false;
  while (quietSeconds < 2 && Date.now() - started < timeoutMs) {
    const end = await bench.cpu.window();
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const window = await end();
    const foreignCores = window.foreignMs / Math.max(1, window.wallMs);
    quietSeconds = foreignCores < 0.1 ? quietSeconds + 1 : 0;
    if (!warned && foreignCores >= 0.1) {
      warned = true;
      log(`   waiting for a quiet machine (other processes use ${foreignCores.toFixed(2)} cores)`);
    }
  }
  return Date.now() - started;
}

export async function setFaults(bench: BenchSystem, knobs: Record<string, number>): Promise<void> {
  const response = await fetch(`${bench.system.pspBaseUrl}/control`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(knobs),
  });
  if (!response.ok) throw new Error(`psp-sim /control: ${response.status} ${await response.text()}`);
}
