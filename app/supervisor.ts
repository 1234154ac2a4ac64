// Runs the system's processes on one machine: the databases (a URL always wins, otherwise an
// embedded PostgreSQL), migrations, then web, K workers and (unless PSP_BASE_URL is set) the
// payout provider simulator as child processes sharing one set of secrets. Used by `npm start`,
// the benchmark and the chaos run. A child that dies is restarted unless told otherwise.
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { type Config, environmentHas, processEnvironment } from './config.ts';
import { resolveDatabaseUrls, type DatabaseUrls } from './db/databaseUrls.ts';
import { migrateAll } from './db/migrate.ts';
import type { Logger } from './logger.ts';
import { projectRoot } from './paths.ts';

const RESTART_DELAY_MAX_MS = 10_000;
const CHILD_STOP_GRACE_MS = 20_000;

export type ChildName = 'web' | 'psp-sim' | `worker-${number}`;

export type SupervisedChild = {
  readonly name: ChildName;
  readonly script: string;
  env: NodeJS.ProcessEnv;
  process: ChildProcess | null;
  restarts: number;
  /** false while a chaos run holds it down */
  autoRestart: boolean;
};

export type LaunchOptions = Readonly<{
  config: Config;
  logger: Logger;
  workers?: number;
  /** extra environment for every child (tuning, fault knobs) */
  env?: Record<string, string>;
  /**
   * 'inherit' shows the children's logs; 'ignore' keeps a benchmark's output clean; a directory
   * keeps each child's output in `<name>.log` there (appended across restarts)
   */
  stdio?: 'inherit' | 'ignore' | Readonly<{ logDir: string }>;
  /** restart children that exit (default true) */
  autoRestart?: boolean;
}>;

export type LaunchedSystem = Readonly<{
  webUrl: string;
  webPort: number;
  pspBaseUrl: string;
  simulated: boolean;
  urls: DatabaseUrls;
  children: readonly SupervisedChild[];
  child: (name: ChildName) => SupervisedChild;
  start: (name: ChildName) => void;
  kill: (name: ChildName, signal: NodeJS.Signals) => Promise<void>;
  waitForReady: (timeoutMs: number) => Promise<void>;
  stop: () => Promise<void>;
}>;

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '0.0.0.0', () => server.close(() => resolve(true)));
  });
}

export async function ephemeralPort(): Promise<number> {
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
async function choosePort(variable: string, configured: number, logger: Logger): Promise<number> {
  if (configured !== 0 && (await portFree(configured))) return configured;
  if (configured !== 0 && environmentHas(variable)) throw new Error(`${variable}=${configured}: that port is already in use`);
  const port = await ephemeralPort();
  if (configured !== 0) logger.warn(`port ${configured} is in use; using ${port} instead (set ${variable} to choose)`);
  return port;
}

export async function waitForHttp(url: string, timeoutMs: number): Promise<void> {
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

/** SUPERVISOR_NODE_ARGS_WEB="--cpu-prof" (or _WORKER, _PSP_SIM): extra node flags for profiling a child. */
function childNodeArgs(name: ChildName): string[] {
  const key = `SUPERVISOR_NODE_ARGS_${name.replace(/-\d+$/, '').replace('-', '_').toUpperCase()}`;
  return (processEnvironment()[key] ?? '').split(' ').filter(Boolean);
}

function childStdio(stdio: NonNullable<LaunchOptions['stdio']>, name: ChildName): StdioOptions {
  if (typeof stdio === 'string') return stdio;
  const fd = openSync(path.join(stdio.logDir, `${name}.log`), 'a');
  return ['ignore', fd, fd];
}

export async function launchSystem(options: LaunchOptions): Promise<LaunchedSystem> {
  const { config, logger } = options;
  const urls = await resolveDatabaseUrls(config, (message) => logger.warn(message));
  await migrateAll(urls, (message) => logger.warn(message));
  const webPort = await choosePort('PORT', config.port, logger);
  const shared: NodeJS.ProcessEnv = {
    ...processEnvironment(),
    NODE_ENV: config.nodeEnv,
    LOG_LEVEL: config.logLevel,
    AUTH_JWT_SECRET: config.auth.jwtSecret,
    ADMIN_TOKEN: config.auth.adminToken,
    INTERNAL_TOKEN: config.auth.internalToken,
    PSP_WEBHOOK_SECRET: config.psp.webhookSecrets.join(','),
    BALANCE_DATABASE_URL: urls.balanceUrl,
    LEDGER_DATABASE_URL: urls.ledgerUrl,
    PORT: String(webPort),
    ...(options.env ?? {}),
  };
  const children: SupervisedChild[] = [];
  const make = (name: ChildName, script: string, env: NodeJS.ProcessEnv): SupervisedChild => ({
    name,
    script,
    env,
    process: null,
    restarts: 0,
    autoRestart: options.autoRestart ?? true,
  });
  let pspBaseUrl = config.psp.baseUrl;
  if (!pspBaseUrl) {
    const simPort = await choosePort('PSP_SIM_PORT', config.psp.simPort, logger);
    pspBaseUrl = `http://127.0.0.1:${simPort}`;
    const callbackUrl = processEnvironment().PSP_CALLBACK_URL || `http://127.0.0.1:${webPort}/withdraw/notify`;
    children.push(
      make('psp-sim', 'app/gateway/simulator/pspSimMain.ts', { ...shared, PSP_SIM_PORT: String(simPort), PSP_CALLBACK_URL: callbackUrl }),
    );
  }
  const appEnv = { ...shared, PSP_BASE_URL: pspBaseUrl };
  children.push(make('web', 'app/web.ts', appEnv));
  for (let i = 1; i <= (options.workers ?? 1); i += 1) children.push(make(`worker-${i}`, 'jobs/worker.ts', appEnv));

  let stopping = false;
  const start = (child: SupervisedChild) => {
    if (child.process || stopping) return;
    const stdio = childStdio(options.stdio ?? 'inherit', child.name);
    const proc = spawn(process.execPath, [...childNodeArgs(child.name), '--import', 'tsx', path.join(projectRoot, child.script)], {
      cwd: projectRoot,
      env: child.env,
      stdio,
    });
    // the child holds its own copy of a log file's descriptor
    if (Array.isArray(stdio) && typeof stdio[1] === 'number') closeSync(stdio[1]);
    child.process = proc;
    const startedAt = Date.now();
    proc.on('exit', (code, signal) => {
      if (child.process === proc) child.process = null;
      if (stopping || !child.autoRestart) return;
      // a child that ran for a while starts over with a short delay
      if (Date.now() - startedAt > 30_000) child.restarts = 0;
      child.restarts += 1;
      const delayMs = Math.min(500 * 2 ** Math.min(child.restarts - 1, 10), RESTART_DELAY_MAX_MS);
      logger.error({ child: child.name, code, signal, restartInMs: delayMs }, 'child process exited; restarting');
      setTimeout(() => start(child), delayMs).unref();
    });
  };
  const byName = (name: ChildName) => {
    const found = children.find((c) => c.name === name);
    if (!found) throw new Error(`no child ${name}`);
    return found;
  };
  const stopChild = (child: SupervisedChild, signal: NodeJS.Signals, graceMs: number): Promise<void> => {
    const proc = child.process;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      proc.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      proc.kill(signal);
    });
  };
  for (const child of children) start(child);

  const webUrl = `http://127.0.0.1:${webPort}`;
  return {
    webUrl,
    webPort,
    pspBaseUrl,
    simulated: !config.psp.baseUrl,
    urls,
    children,
    child: byName,
    start: (name) => start(byName(name)),
    kill: (name, signal) => stopChild(byName(name), signal, signal === 'SIGKILL' ? 0 : CHILD_STOP_GRACE_MS),
    waitForReady: async (timeoutMs) => {
      await waitForHttp(`${webUrl}/readyz`, timeoutMs);
      if (!config.psp.baseUrl) await waitForHttp(`${pspBaseUrl}/control`, timeoutMs);
    },
    stop: async () => {
      stopping = true;
      // web first (no new work), then workers finish theirs, then the simulator
      await stopChild(byName('web'), 'SIGTERM', CHILD_STOP_GRACE_MS);
      await Promise.all(children.filter((c) => c.name.startsWith('worker-')).map((c) => stopChild(c, 'SIGTERM', CHILD_STOP_GRACE_MS)));
      await Promise.all(children.map((c) => stopChild(c, 'SIGTERM', CHILD_STOP_GRACE_MS)));
      await urls.cluster?.stop();
    },
  };
}
