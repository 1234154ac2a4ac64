// `npm start`: the whole system on one machine. Starts (or uses) the databases, migrates them,
// then runs the web process, the worker process and, unless PSP_BASE_URL is set, the payout
// provider simulator as child processes with one shared set of secrets, seeds a funded demo user
// in development, and prints how to use it. A child that dies is restarted (as a PaaS would).
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { v5 as uuidv5 } from 'uuid';
import { creditAccount, insertAccount, listUserAccountFacts } from './balance/accountQueries.ts';
import type { Config } from './config.ts';
import { resolveDatabaseUrls } from './db/databaseUrls.ts';
import { migrateAll } from './db/migrate.ts';
import { createDatabases, endDatabases } from './db/pools.ts';
import { signUserToken } from './http/auth.ts';
import { failAndExit, installShutdown, loadConfigOrExit } from './lifecycle.ts';
import { createLogger } from './logger.ts';
import { projectRoot } from './paths.ts';

const DEMO_USER_ID = 'demo-user';
const DEMO_CREDIT_MINOR = 100_000n; // 1,000.00 USD
// a fixed id: restarting never credits the demo wallet twice
const DEMO_NAMESPACE = '6f1c2a0e-4a43-4d6b-9a51-3c1f2e9b7d10';
const RESTART_DELAY_MAX_MS = 10_000;
const READY_TIMEOUT_MS = 60_000;

const config = loadConfigOrExit();
const logger = createLogger({ level: config.logLevel, name: 'main' });

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '0.0.0.0', () => server.close(() => resolve(true)));
  });
}

async function ephemeralPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** The configured port, or (when the variable was not set and the default is taken) a free one. */
async function choosePort(variable: string, configured: number): Promise<number> {
  if (await portFree(configured)) return configured;
  if (process.env[variable]) throw new Error(`${variable}=${configured}: that port is already in use`);
  const port = await ephemeralPort();
  logger.warn(`port ${configured} is in use; using ${port} instead (set ${variable} to choose)`);
  return port;
}

type Child = { name: string; script: string; env: NodeJS.ProcessEnv; process: ChildProcess | null; restarts: number };

function startChild(child: Child, stopping: () => boolean): void {
  const proc = spawn(process.execPath, ['--import', 'tsx', path.join(projectRoot, child.script)], {
    cwd: projectRoot,
    env: child.env,
    stdio: 'inherit',
  });
  child.process = proc;
  proc.on('exit', (code, signal) => {
    child.process = null;
    if (stopping()) return;
    child.restarts += 1;
    const delayMs = Math.min(500 * 2 ** Math.min(child.restarts - 1, 10), RESTART_DELAY_MAX_MS);
    logger.error({ child: child.name, code, signal, restartInMs: delayMs }, 'child process exited; restarting');
    setTimeout(() => startChild(child, stopping), delayMs).unref();
  });
}

function stopChild(child: Child, graceMs: number): Promise<void> {
  const proc = child.process;
  if (!proc) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
    proc.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    proc.kill('SIGTERM');
  });
}

async function waitForHttp(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(1_000) });
      if (response.ok) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function seedDemoUser(urls: { balanceUrl: string; ledgerUrl: string }): Promise<string> {
  const databases = await createDatabases(urls, { poolSizeMax: 2, statementTimeoutMs: 10_000, applicationName: 'withdraw-main' });
  try {
    const existing = await listUserAccountFacts(databases.balance, DEMO_USER_ID);
    const accountId = existing[0]?.accountId ?? (await insertAccount(databases.balance, { userId: DEMO_USER_ID, currency: 'USD' })).accountId;
    await creditAccount(databases.balance, {
      transactionId: uuidv5(`demo-credit:${accountId}`, DEMO_NAMESPACE),
      accountId,
      amountMinor: DEMO_CREDIT_MINOR,
      actor: 'seed',
    });
    return accountId;
  } finally {
    await endDatabases(databases);
  }
}

function sharedEnv(config: Config, overrides: Record<string, string>): NodeJS.ProcessEnv {
  return {
    ...process.env,
    NODE_ENV: config.nodeEnv,
    AUTH_JWT_SECRET: config.auth.jwtSecret,
    ADMIN_TOKEN: config.auth.adminToken,
    INTERNAL_TOKEN: config.auth.internalToken,
    PSP_WEBHOOK_SECRET: config.psp.webhookSecrets.join(','),
    ...overrides,
  };
}

async function main(): Promise<void> {
  const urls = await resolveDatabaseUrls(config, (message) => logger.warn(message));
  await migrateAll(urls, (message) => logger.warn(message));
  const webPort = await choosePort('PORT', config.port);
  const children: Child[] = [];
  let pspBaseUrl = config.psp.baseUrl;
  const baseOverrides = { BALANCE_DATABASE_URL: urls.balanceUrl, LEDGER_DATABASE_URL: urls.ledgerUrl, PORT: String(webPort) };
  if (!pspBaseUrl) {
    const simPort = await choosePort('PSP_SIM_PORT', config.psp.simPort);
    pspBaseUrl = `http://127.0.0.1:${simPort}`;
    const callbackUrl = process.env.PSP_CALLBACK_URL || `http://127.0.0.1:${webPort}/withdraw/notify`;
    children.push({ name: 'psp-sim', script: 'app/gateway/simulator/pspSimMain.ts', restarts: 0, process: null,
      env: sharedEnv(config, { ...baseOverrides, PSP_SIM_PORT: String(simPort), PSP_CALLBACK_URL: callbackUrl }) });
  }
  const overrides = { ...baseOverrides, PSP_BASE_URL: pspBaseUrl };
  children.push({ name: 'web', script: 'app/web.ts', restarts: 0, process: null, env: sharedEnv(config, overrides) });
  children.push({ name: 'worker', script: 'jobs/worker.ts', restarts: 0, process: null, env: sharedEnv(config, overrides) });

  let stopping = false;
  installShutdown(logger, () => [
    { name: 'children', run: async () => { stopping = true; await Promise.all(children.map((c) => stopChild(c, 20_000))); } },
    { name: 'embedded postgres', run: async () => { await urls.cluster?.stop(); } },
  ], 30_000);
  for (const child of children) startChild(child, () => stopping);

  const demoAccountId = config.nodeEnv === 'production' ? null : await seedDemoUser(urls);
  const webUrl = `http://127.0.0.1:${webPort}`;
  await waitForHttp(`${webUrl}/readyz`, READY_TIMEOUT_MS);
  const demoToken = await signUserToken(config.auth.jwtSecret, DEMO_USER_ID, 7 * 24 * 3600);
  const lines = [
    '',
    `withdraw system is up: ${webUrl}`,
    `  databases   ${urls.cluster ? `embedded PostgreSQL in ${urls.cluster.dataDir} (port ${urls.cluster.port})` : 'from BALANCE_DATABASE_URL / LEDGER_DATABASE_URL'}`,
    `  provider    ${pspBaseUrl}${config.psp.baseUrl ? '' : ' (simulator)'}`,
    `  admin token ${config.auth.adminToken}`,
    ...(demoAccountId
      ? [
          `  demo user   ${DEMO_USER_ID}, account ${demoAccountId} (USD, funded)`,
          `  demo token  ${demoToken}`,
          '',
          'try:',
          `  curl -s -X POST ${webUrl}/withdraw -H "Authorization: Bearer ${demoToken}" \\`,
          `    -H "idempotent-key: $(node -e "import('uuid').then(u=>console.log(u.v7()))")" \\`,
          `    -H 'Content-Type: application/json' -d '{"toAccountId":"bank-123","amount":12.34}'`,
          `  curl -s ${webUrl}/withdraw/<withdrawOrderId> -H "Authorization: Bearer ${demoToken}"`,
          `  dashboard: ${webUrl}/admin/ (Authorization: Bearer <admin token>)`,
        ]
      : []),
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch((error: unknown) => failAndExit(logger, error, 'npm start failed'));
