// Where the two databases are: the URLs when set (a URL always wins), otherwise an embedded
// PostgreSQL cluster holding both databases.
import path from 'node:path';
import type { Config } from '../config.ts';
import { ensureDatabase, startEmbeddedCluster, temporaryDataDir, unreachableAncestor, type EmbeddedCluster } from './embeddedPostgres.ts';

export const EMBEDDED_BALANCE_DB = 'withdraw_balance';
export const EMBEDDED_LEDGER_DB = 'withdraw_ledger';

export type DatabaseUrls = Readonly<{ balanceUrl: string; ledgerUrl: string; cluster: EmbeddedCluster | null }>;

export async function resolveDatabaseUrls(config: Config, log: (message: string) => void): Promise<DatabaseUrls> {
  const { balanceUrl, ledgerUrl } = config.database;
  if (balanceUrl && ledgerUrl) return { balanceUrl, ledgerUrl, cluster: null };

  let dataDir = path.resolve(config.database.embeddedDir);
  let persistent = true;
  const blocked = unreachableAncestor(dataDir);
  if (blocked) {
    const fallback = await temporaryDataDir('withdraw-pg-');
    log(
      `the embedded PostgreSQL runs as the "postgres" user, which cannot enter ${blocked} (mode without o+x), ` +
        `so ${dataDir} cannot hold its data. Using a temporary cluster in ${fallback} instead: data will not ` +
        `survive a restart. To keep data, set EMBEDDED_PG_DIR to a folder the postgres user can reach ` +
        `(for example /var/lib/withdraw/pg), or set BALANCE_DATABASE_URL and LEDGER_DATABASE_URL.`,
    );
    dataDir = fallback;
    persistent = false;
  }
  const cluster = await startEmbeddedCluster({
    dataDir,
    port: config.database.embeddedPort,
    persistent,
    durable: true,
    log: (line) => {
      if (/FATAL|PANIC/.test(line)) log(`postgres: ${line}`);
    },
  });
  await ensureDatabase(cluster.url('postgres'), EMBEDDED_BALANCE_DB);
  await ensureDatabase(cluster.url('postgres'), EMBEDDED_LEDGER_DB);
  return { balanceUrl: cluster.url(EMBEDDED_BALANCE_DB), ledgerUrl: cluster.url(EMBEDDED_LEDGER_DB), cluster };
}
