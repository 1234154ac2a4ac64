// A chaos run: the whole system as real processes (an embedded PostgreSQL it can restart, web,
// K workers, the provider simulator), clients that behave like real ones, and a fault schedule
// drawn from the seed. Then the faults stop, the system must converge on its own (bounded), and
// runChecks() holds it to the invariants, money conservation and the provider's truth.
import { cp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { sql } from 'slonik';
import { v4 as uuidv4, v7 as uuidv7 } from 'uuid';
import { z } from 'zod';
import { loadConfig, processEnvironment, type Config } from '../app/config.ts';
import { temporaryDataDir } from '../app/db/embeddedPostgres.ts';
import { createDatabases, endDatabases, type Databases } from '../app/db/pools.ts';
import { signWebhook } from '../app/gateway/webhookSignature.ts';
import { signUserToken } from '../app/http/auth.ts';
import { createLogger, type Logger } from '../app/logger.ts';
import { ephemeralPort, launchSystem, type ChildName, type LaunchedSystem } from '../app/supervisor.ts';
import { createPspHttpAdapter } from '../app/gateway/pspHttpAdapter.ts';
import { runReconciliation } from '../reconcile/reconcileRun.ts';
import { runChecks, terminateBackends, type Violation } from './checks.ts';
import { runClients, type ChaosUser } from './clients.ts';
import { between, createRandom, faultSchedule, providerKnobs, type Fault } from './faultSchedule.ts';

export type ChaosOptions = Readonly<{
  orders: number;
  durationSeconds: number;
  seed: number;
  workers: number;
  users?: number;
  concurrency?: number;
  convergenceTimeoutMs?: number;
  log?: (line: string) => void;
  /** show the children's logs (warn and above) instead of keeping them in the run's folder */
  verbose?: boolean;
  /**
   * where a run keeps its folder (the children's logs, the harness's own log, the report and, when
   * it fails, a copy of the database's data directory); a run that passes removes its folder
   */
  runsDir?: string;
  /** keep the folder of a run that passed too */
  keep?: boolean;
}>;

export type ChaosReport = Readonly<{
  seed: number;
  settings: Record<string, unknown>;
  scheduleFingerprint: string;
  faultsInjected: Record<string, number>;
  faultErrors: string[];
  clients: Record<string, unknown>;
  convergenceMs: number | null;
  totals: Record<string, unknown>;
  violations: Violation[];
  passed: boolean;
  /** the folder the run was kept in (null: it passed and was removed) */
  keptIn: string | null;
}>;

/** Settings that make a short run converge in bounded time; all still go through the real code. */
const CHAOS_ENV: Record<string, string> = {
  LOG_LEVEL: 'warn',
  GATEWAY_TIMEOUT_MS: '2000',
  GATEWAY_CONNECT_TIMEOUT_MS: '1000',
  GATEWAY_RETRY_BASE_MS: '200',
  GATEWAY_RETRY_MAX_MS: '3000',
  GATEWAY_SUBMIT_ATTEMPTS_MAX: '10',
  INIT_STALE_MS: '8000',
  PROCESSING_STALE_MS: '4000',
  PROCESSING_QUERY_INTERVAL_MS: '2000',
  PROCESSING_QUERY_ATTEMPTS_MAX: '30',
  RECOVERY_INTERVAL_MS: '2000',
  WORKER_HEARTBEAT_INTERVAL_MS: '1000',
  WORKER_STALE_AFTER_MS: '5000',
  WORKER_JOB_LOCK_MAX_MS: '20000',
  WORKER_TASK_TIMEOUT_MS: '15000',
  WORKER_SHUTDOWN_GRACE_MS: '5000',
  RELAY_POLL_INTERVAL_MS: '300',
  DB_POOL_SIZE_MAX: '12',
  WORKER_CONCURRENCY: '24',
};

/** every fault knob of the simulator off */
const QUIET_PROVIDER: Record<string, number> = {
  latencyMs: 0,
  rejectRate: 0,
  errorRate: 0,
  hangRate: 0,
  failAfterAcceptRate: 0,
  duplicateCallbackRate: 0,
  lateCallbackMs: 0,
  dropCallbackRate: 0,
  reverseAfterPaidRate: 0,
};

const CURRENCY_OF_USER = (index: number) => (index % 10 === 0 ? 'JPY' : index % 5 === 0 ? 'EUR' : 'USD');
const FUNDING = { USD: '10000.00', EUR: '10000.00', JPY: '1000000' } as const;

async function adminPost(system: LaunchedSystem, token: string, pathname: string, body: unknown) {
  for (let attempt = 1; ; attempt += 1) {
    try {
      const response = await fetch(`${system.webUrl}${pathname}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(10_000),
      });
      const json = (await response.json()) as { code: number; data: Record<string, string> };
      if (json.code === 0) return json.data;
      if (response.status < 500) throw new Error(`${pathname}: ${JSON.stringify(json)}`);
    } catch (error) {
      if (attempt >= 5) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, 300 * attempt));
  }
}

async function seedUsers(system: LaunchedSystem, config: Config, count: number): Promise<ChaosUser[]> {
  const users: ChaosUser[] = [];
  for (let i = 0; i < count; i += 1) {
    const userId = `chaos-${i}`;
    const currency = CURRENCY_OF_USER(i);
    const account = await adminPost(system, config.auth.adminToken, '/admin/accounts', { userId, currency });
    await adminPost(system, config.auth.adminToken, `/admin/accounts/${account.accountId}/credits`, {
      amount: FUNDING[currency],
      transactionId: uuidv4(),
    });
    users.push({ userId, currency, accountId: account.accountId!, token: await signUserToken(config.auth.jwtSecret, userId) });
  }
  return users;
}

type FaultContext = {
  system: LaunchedSystem;
  config: Config;
  random: () => number;
  attacks: Array<{ kind: string; expectedStatus: number; gotStatus: number }>;
  knownReferences: () => string[];
  setKnobs: (knobs: Record<string, number>) => Promise<void>;
  timers: Set<NodeJS.Timeout>;
};

async function postCallback(system: LaunchedSystem, signature: string, body: string): Promise<number> {
  try {
    const response = await fetch(`${system.webUrl}/withdraw/notify`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-signature': signature },
      body,
      signal: AbortSignal.timeout(5_000),
    });
    await response.text();
    return response.status;
  } catch {
    return 0;
  }
}

async function attack(ctx: FaultContext, fault: Fault): Promise<void> {
  const references = ctx.knownReferences();
  if (references.length === 0) return;
  for (let i = 0; i < fault.target; i += 1) {
    const reference = references[between(ctx.random, 0, references.length - 1)]!;
    const body = JSON.stringify({
      eventId: `attack-${uuidv7()}`,
      reference,
      status: 'failed',
      failureCode: 'attacker',
      occurredAt: new Date().toISOString(),
    });
    const now = Math.floor(Date.now() / 1000);
    if (fault.kind === 'attack_forged_callback') {
      // signed with a secret the attacker guessed
      const status = await postCallback(ctx.system, signWebhook('attacker-guessed-secret-0000', body, now), body);
      if (status !== 0) ctx.attacks.push({ kind: 'forged', expectedStatus: 401, gotStatus: status });
    } else {
      // a captured, validly signed callback replayed after the tolerance window
      const status = await postCallback(ctx.system, signWebhook(ctx.config.psp.webhookSecrets[0]!, body, now - 3_600), body);
      if (status !== 0) ctx.attacks.push({ kind: 'replayed_stale', expectedStatus: 401, gotStatus: status });
    }
  }
}

function later(ctx: FaultContext, ms: number, action: () => void | Promise<void>): void {
  const timer = setTimeout(() => {
    ctx.timers.delete(timer);
    void Promise.resolve(action()).catch(() => {});
  }, ms);
  ctx.timers.add(timer);
}

async function killFor(ctx: FaultContext, name: ChildName, downMs: number): Promise<void> {
  const child = ctx.system.child(name);
  child.autoRestart = false;
  await ctx.system.kill(name, 'SIGKILL');
  later(ctx, downMs, () => {
    child.autoRestart = true;
    ctx.system.start(name);
  });
}

async function inject(ctx: FaultContext, fault: Fault): Promise<void> {
  const cluster = ctx.system.urls.cluster;
  switch (fault.kind) {
    case 'kill_worker':
      return killFor(ctx, `worker-${fault.target}`, fault.durationMs);
    case 'kill_web':
      return killFor(ctx, 'web', fault.durationMs);
    case 'pg_restart_fast':
    case 'pg_restart_immediate':
      if (!cluster) throw new Error('database restarts need the embedded PostgreSQL');
      return cluster.restart(fault.kind === 'pg_restart_fast' ? 'fast' : 'immediate');
    case 'pg_terminate_backends':
      if (!cluster) throw new Error('no admin connection');
      await terminateBackends(cluster.url('postgres'), fault.target, ctx.random);
      return;
    case 'attack_forged_callback':
    case 'attack_replayed_callback':
      return attack(ctx, fault);
    default: {
      const knobs = providerKnobs(fault) as Record<string, number>;
      await ctx.setKnobs(knobs);
      later(ctx, fault.durationMs, () => ctx.setKnobs(Object.fromEntries(Object.keys(knobs).map((k) => [k, 0]))));
    }
  }
}

/** The newest orders' references, refreshed every 2 s: what the attacker forges callbacks for. */
function trackReferences(databases: Databases, references: string[]): NodeJS.Timeout {
  return setInterval(() => {
    databases.balance
      .anyFirst(sql.type(z.object({ transactionId: z.string() }))`
        select transaction_id as "transactionId" from withdraw_orders order by created_at desc limit 500`)
      .then((rows) => {
        references.splice(0, references.length, ...rows);
      })
      .catch(() => {});
  }, 2_000);
}

async function waitForConvergence(databases: Databases, timeoutMs: number): Promise<number | null> {
  const started = Date.now();
  let quietSince: number | null = null;
  for (;;) {
    try {
      const open = await databases.balance.oneFirst(sql.type(z.object({ n: z.number() }))`
        select ((select count(*) from withdraw_orders where status in ('init', 'processing'))
              + (select count(*) from outbox where relayed_at is null)
              + (select count(*) from gateway_inbox where processed_at is null)
              + (select count(*) from graphile_worker.jobs where locked_at is not null)
              + (select count(*) from graphile_worker.jobs
                  where task_identifier in ('ledger__post', 'gateway__submit', 'gateway__submit_batch') and attempts < max_attempts))::int as n`);
      const ledgerOpen = await databases.ledger.oneFirst(sql.type(z.object({ n: z.number() }))`
        select count(*)::int as n from outbox where relayed_at is null`);
      if (open + ledgerOpen === 0) {
        quietSince ??= Date.now();
        if (Date.now() - quietSince > 1_000) return Date.now() - started;
      } else {
        quietSince = null;
      }
    } catch {
      quietSince = null; // the database may be coming back
    }
    if (Date.now() - started > timeoutMs) return null;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const log = options.log ?? (() => {});
  const durationMs = options.durationSeconds * 1000;
  const schedule = faultSchedule({ seed: options.seed, durationMs, workers: options.workers });
  const fingerprint = schedule.map((f) => `${f.atMs}:${f.kind}:${f.durationMs}:${f.target.toFixed(3)}`).join('|');
  const dataDir = await temporaryDataDir('withdraw-chaos-');
  const runDir = path.join(options.runsDir ?? path.join(os.tmpdir(), 'withdraw-chaos-runs'), `seed-${options.seed}-${Date.now()}`);
  const logDir = path.join(runDir, 'logs');
  await mkdir(logDir, { recursive: true });
  const config = loadConfig({
    ...processEnvironment(),
    ...CHAOS_ENV,
    NODE_ENV: 'production',
    PORT: '0',
    PSP_SIM_PORT: '0',
    EMBEDDED_PG_DIR: dataDir,
    EMBEDDED_PG_PORT: String(await ephemeralPort()),
    BALANCE_DATABASE_URL: '',
    LEDGER_DATABASE_URL: '',
    PSP_BASE_URL: '',
  });
  // the harness's own log (child exits and restarts, postgres FATALs: restarts cause them by design)
  const logger: Logger = createLogger({
    level: 'warn',
    name: 'chaos',
    destination: pino.destination({ dest: path.join(logDir, 'harness.log'), sync: true }),
  });
  log(
    `chaos: seed ${options.seed}, ${options.orders} orders, ${options.durationSeconds} s of faults, ${options.workers} workers, ${schedule.length} faults scheduled`,
  );
  const system = await launchSystem({
    config,
    logger,
    workers: options.workers,
    env: { ...CHAOS_ENV, PSP_SIM_SEED: String(options.seed) },
    stdio: options.verbose ? 'inherit' : { logDir },
  });
  log(`chaos: logs in ${logDir}`);
  let databases: Databases | null = null;
  let report: ChaosReport | null = null;
  const timers = new Set<NodeJS.Timeout>();
  try {
    await system.waitForReady(90_000);
    databases = await createDatabases(system.urls, { poolSizeMax: 4, statementTimeoutMs: 60_000, applicationName: 'chaos-checker' });
    const users = await seedUsers(system, config, options.users ?? 60);
    log(`chaos: ${users.length} users funded; starting clients and faults`);
    const random = createRandom(options.seed ^ 0x5eed);
    const attacks: FaultContext['attacks'] = [];
    const references: string[] = [];
    const setKnobs = async (knobs: Record<string, number>) => {
      await fetch(`${system.pspBaseUrl}/control`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(knobs),
      })
        .then((r) => r.text())
        .catch(() => {});
    };
    const ctx: FaultContext = { system, config, random, attacks, knownReferences: () => references, setKnobs, timers };
    const injected: Record<string, number> = {};
    const faultErrors: string[] = [];
    const started = Date.now();
    const faultsDone = (async () => {
      for (const fault of schedule) {
        const wait = started + fault.atMs - Date.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        try {
          await inject(ctx, fault);
          injected[fault.kind] = (injected[fault.kind] ?? 0) + 1;
        } catch (error) {
          faultErrors.push(`${fault.kind} at ${fault.atMs} ms: ${(error as Error).message}`);
        }
      }
    })();
    const referenceTimer = trackReferences(databases, references);
    const clientRun = runClients({
      baseUrl: () => system.webUrl,
      users,
      orders: options.orders,
      concurrency: options.concurrency ?? 32,
      ratePerSecond: Math.max(1, options.orders / Math.max(1, options.durationSeconds)),
      requestTimeoutMs: 5_000,
      retriesMax: 8,
      duplicateShare: 0.05,
      pollShare: 0.1,
      random: createRandom(options.seed ^ 0xc11e),
    });
    const [{ keys, stats }] = await Promise.all([clientRun, faultsDone]);
    clearInterval(referenceTimer);
    log(`chaos: clients done (${stats.requests} requests, ${stats.accepted} accepted); stopping faults`);

    // stop the faults: clear pending restarts, reset the provider, bring every process back up
    for (const timer of timers) clearTimeout(timer);
    await setKnobs(QUIET_PROVIDER);
    for (const child of system.children) {
      child.autoRestart = true;
      system.start(child.name);
    }
    const convergenceMs = await waitForConvergence(databases, options.convergenceTimeoutMs ?? 180_000);
    log(`chaos: ${convergenceMs === null ? 'did NOT converge' : `converged in ${convergenceMs} ms`}; reconciling and checking`);
    // the system's own reconciliation records what disagrees with the provider (reversed payouts)
    const reconConfig = loadConfig({
      ...processEnvironment(),
      ...CHAOS_ENV,
      RECONCILE_SETTLE_MS: '0',
      RECONCILE_PROVIDER_CHECKS_MAX: '1000000',
      BALANCE_DATABASE_URL: system.urls.balanceUrl,
      LEDGER_DATABASE_URL: system.urls.ledgerUrl,
    });
    const psp = createPspHttpAdapter({ baseUrl: system.pspBaseUrl, ...reconConfig.gateway });
    const reconciliation = await runReconciliation({ databases, psp, config: reconConfig, logger, mode: 'full' }).finally(() =>
      psp.close(),
    );
    const { violations, totals } = await runChecks({ databases, pspUrl: system.pspBaseUrl, keys, attacks });
    if (convergenceMs === null) violations.unshift({ check: 'I8', subject: 'system', detail: 'did not converge within the timeout' });
    report = {
      seed: options.seed,
      settings: { orders: options.orders, durationSeconds: options.durationSeconds, workers: options.workers, users: users.length },
      scheduleFingerprint: fingerprint.length > 80 ? `${fingerprint.slice(0, 80)}… (${schedule.length} faults)` : fingerprint,
      faultsInjected: injected,
      faultErrors,
      clients: { ...stats, keys: keys.length },
      convergenceMs,
      totals: { ...totals, reconciliationBreaks: reconciliation.findings.length },
      violations,
      passed: violations.length === 0,
      keptIn: null,
    };
  } finally {
    for (const timer of timers) clearTimeout(timer);
    if (databases) await endDatabases(databases);
    await system.stop().catch(() => {});
    report = await keepOrRemove({ runDir, dataDir, report, keep: options.keep ?? false, log });
    await rm(path.dirname(dataDir), { recursive: true, force: true }).catch(() => {});
  }
  if (!report) throw new Error('chaos: the run ended without a report');
  return report;
}

const bigintText = (_key: string, value: unknown) => (typeof value === 'bigint' ? value.toString() : value);

/** A failed run (or, with keep, any) keeps what it saw: the logs, the report, and the databases as they ended. */
async function keepOrRemove(run: {
  runDir: string;
  dataDir: string;
  report: ChaosReport | null;
  keep: boolean;
  log: (line: string) => void;
}): Promise<ChaosReport | null> {
  if (!run.keep && run.report?.passed) {
    await rm(run.runDir, { recursive: true, force: true }).catch(() => {});
    return run.report;
  }
  await cp(run.dataDir, path.join(run.runDir, 'pgdata'), { recursive: true }).catch((error: unknown) =>
    run.log(`chaos: could not copy the data directory: ${String(error)}`),
  );
  await writeFile(
    path.join(run.runDir, 'report.json'),
    JSON.stringify(run.report ?? { error: 'the run ended early' }, bigintText, 2),
  ).catch(() => {});
  run.log(`chaos: kept ${run.runDir} (logs/, pgdata/, report.json)`);
  return run.report ? { ...run.report, keptIn: run.runDir } : null;
}
