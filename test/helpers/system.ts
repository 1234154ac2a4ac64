// Starts the real web process (in this test process) on fresh databases, with known secrets.
import { v4 as uuidv4, v7 as uuidv7 } from 'uuid';
import { loadConfig, type Config } from '../../app/config.ts';
import { signUserToken } from '../../app/http/auth.ts';
import { createLogger, type Logger } from '../../app/logger.ts';
import { startWebProcess, type WebProcess } from '../../app/webApp.ts';
import { createPspSimulator, type Knobs } from '../../app/gateway/simulator/pspSimulator.ts';
import { createPspHttpAdapter } from '../../app/gateway/pspHttpAdapter.ts';
import { startWorkerProcess, type WorkerProcess } from '../../jobs/workerApp.ts';
import type { ParsedCronItem } from 'graphile-worker';
import { sql } from 'slonik';
import { ephemeralPort } from '../../app/supervisor.ts';
import { z } from 'zod';
import { call, type JsonReply } from './http.ts';
import { createTestDatabases, type TestDatabases } from './testDatabases.ts';

export const TEST_SECRETS = {
  AUTH_JWT_SECRET: 'test-jwt-secret-0123456789-abcdefghijklmnop',
  ADMIN_TOKEN: 'test-admin-token-0123456789',
  INTERNAL_TOKEN: 'test-internal-token-0123456789',
  PSP_WEBHOOK_SECRET: 'test-webhook-secret-0123456789',
} as const;

export type TestSystem = Readonly<{
  db: TestDatabases;
  config: Config;
  logger: Logger;
  web: WebProcess;
  url: string;
  adminToken: string;
  userToken: (userId: string, ttlSeconds?: number) => Promise<string>;
  /** creates an account for userId and credits it */
  fundedAccount: (userId: string, amount: string, currency?: string) => Promise<string>;
  withdraw: (token: string, body: unknown, key?: string) => Promise<JsonReply>;
  /** present when started with { worker: true } */
  sim: ReturnType<typeof createPspSimulator> | null;
  simUrl: string | null;
  worker: WorkerProcess | null;
  /**
   * another worker process (the caller stops it), with the system's crontab unless `cronItems`
   * says otherwise, and the system's simulator as its provider unless `pspBaseUrl` names another
   */
  startWorker: (options?: WorkerOptions) => Promise<WorkerProcess>;
  /** polls the Balance DB until every order is in one of `statuses`; throws at the deadline */
  waitForOrders: (orderIds: readonly string[], statuses: readonly string[], timeoutMs?: number) => Promise<Map<string, string>>;
  stop: () => Promise<void>;
}>;

export type WorkerOptions = { cronItems?: ParsedCronItem[]; pspBaseUrl?: string };

/** Fast retries and short timeouts so fault tests finish quickly. */
export const FAST_ASYNC_ENV: Record<string, string> = {
  GATEWAY_RETRY_BASE_MS: '20',
  GATEWAY_RETRY_MAX_MS: '200',
  GATEWAY_TIMEOUT_MS: '400',
  GATEWAY_CONNECT_TIMEOUT_MS: '400',
  RELAY_POLL_INTERVAL_MS: '200',
  WORKER_CONCURRENCY: '16',
  WORKER_HEARTBEAT_INTERVAL_MS: '500',
  // the worker's own recovery (its cron and timer) stays out of the tests' way: they call it
  // themselves, with the time they choose (recoveryConfig)
  PROCESSING_STALE_MS: '300000',
  RECOVERY_INTERVAL_MS: '3600000',
};

export function testConfig(db: Pick<TestDatabases, 'balanceUrl' | 'ledgerUrl'>, extra: Record<string, string> = {}): Config {
  return loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    PORT: '0',
    BALANCE_DATABASE_URL: db.balanceUrl,
    LEDGER_DATABASE_URL: db.ledgerUrl,
    ...TEST_SECRETS,
    ...extra,
  });
}

export async function startTestSystem(
  options: {
    env?: Record<string, string>;
    db?: TestDatabases;
    worker?: boolean;
    knobs?: Partial<Knobs>;
    seed?: number;
    /** the worker's crons (default: jobs/crontab.ts); [] for a worker no minute boundary disturbs */
    cronItems?: ParsedCronItem[];
    /** receives every line the web and worker log at warn and above (instead of the silent default) */
    logSink?: (line: string) => void;
  } = {},
): Promise<TestSystem> {
  const db = options.db ?? (await createTestDatabases());
  const env = { ...(options.worker ? FAST_ASYNC_ENV : {}), ...(options.env ?? {}) };
  let sim: ReturnType<typeof createPspSimulator> | null = null;
  let simUrl: string | null = null;
  let worker: WorkerProcess | null = null;
  const psps: Array<{ close: () => Promise<void> }> = [];
  // with a provider, the web process knows it too (operators' resolutions ask it): the simulator
  // starts first, calling back a port chosen for the web process
  const webPort = options.worker ? await ephemeralPort() : 0;
  if (options.worker) {
    sim = createPspSimulator({
      port: 0,
      callbackUrl: `http://127.0.0.1:${webPort}/withdraw/notify`,
      webhookSecret: TEST_SECRETS.PSP_WEBHOOK_SECRET,
      knobs: options.knobs ?? {},
      seed: options.seed ?? 1,
    });
    simUrl = (await sim.start()).url;
  }
  const config = testConfig(db, { ...env, PORT: String(webPort), ...(simUrl ? { PSP_BASE_URL: simUrl } : {}) });
  const sink = options.logSink;
  const newLogger = (name: string) =>
    sink
      ? createLogger({ level: 'warn', name, destination: { write: (line: string) => sink(line) } })
      : createLogger({ level: config.logLevel, name });
  const logger = newLogger('test-web');
  const web = await startWebProcess({ config, databases: db.databases, balanceUrl: db.balanceUrl, logger });
  const startWorker = async (workerOptions: WorkerOptions = {}) => {
    const baseUrl = workerOptions.pspBaseUrl ?? simUrl;
    if (!baseUrl) throw new Error('start the system with { worker: true }, or name the provider');
    const psp = createPspHttpAdapter({ baseUrl, ...config.gateway });
    psps.push(psp);
    return startWorkerProcess({
      config,
      databases: db.databases,
      balanceUrl: db.balanceUrl,
      ledgerUrl: db.ledgerUrl,
      psp,
      logger: newLogger('test-worker'),
      cronItems: workerOptions.cronItems ?? options.cronItems,
    });
  };
  if (options.worker) worker = await startWorker();
  const OrderStatusRow = z.object({ id: z.string(), status: z.string() });
  async function waitForOrders(orderIds: readonly string[], statuses: readonly string[], timeoutMs = 20_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const rows = await db.databases.balance.any(sql.type(OrderStatusRow)`
        select id, status from withdraw_orders where id = any(${sql.array([...orderIds], 'uuid')})`);
      const map = new Map(rows.map((row) => [row.id, row.status]));
      if (orderIds.every((id) => statuses.includes(map.get(id) ?? ''))) return map;
      if (Date.now() > deadline) {
        const behind = orderIds.filter((id) => !statuses.includes(map.get(id) ?? '')).map((id) => `${id}: ${map.get(id) ?? 'missing'}`);
        throw new Error(
          `waited ${timeoutMs} ms for ${orderIds.length} orders to be ${statuses.join('|')}; ${behind.length} are not: ${behind.slice(0, 5).join(', ')}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  const adminToken = TEST_SECRETS.ADMIN_TOKEN;

  async function fundedAccount(userId: string, amount: string, currency = 'USD'): Promise<string> {
    const created = await call(web.url, 'POST', '/admin/accounts', { token: adminToken, body: { userId, currency } });
    if (created.status !== 201) throw new Error(`create account: ${created.status} ${created.text}`);
    const accountId = created.body.data.accountId as string;
    const credited = await call(web.url, 'POST', `/admin/accounts/${accountId}/credits`, {
      token: adminToken,
      body: { amount, transactionId: uuidv4() },
    });
    if (credited.status !== 200) throw new Error(`credit: ${credited.status} ${credited.text}`);
    return accountId;
  }

  return {
    db,
    config,
    logger,
    web,
    url: web.url,
    adminToken,
    userToken: (userId, ttlSeconds) => signUserToken(TEST_SECRETS.AUTH_JWT_SECRET, userId, ttlSeconds),
    fundedAccount,
    withdraw: (token, body, key = uuidv7()) => call(web.url, 'POST', '/withdraw', { token, body, headers: { 'idempotent-key': key } }),
    sim,
    simUrl,
    get worker() {
      return worker;
    },
    startWorker,
    waitForOrders,
    stop: async () => {
      // every part is stopped even when one fails (a server left listening would keep the test
      // file's process, and so the whole run, alive); then the first failure is thrown
      const steps: Array<() => Promise<unknown> | undefined> = [
        () => worker?.stop(),
        () => web.close(1_000),
        () => sim?.stop(),
        () => Promise.allSettled(psps.map((psp) => psp.close())),
        () => (options.db ? undefined : db.drop()),
      ];
      const failures: unknown[] = [];
      for (const step of steps) await Promise.resolve(step()).catch((error: unknown) => failures.push(error));
      if (failures.length > 0) throw failures[0];
    },
  };
}
