// How a process (web, worker) gets its databases: resolve the URLs (embedded when none are set),
// migrate when it started the embedded cluster itself (there is no release phase then), and open
// both pools with the process's name and the Ledger DB role.
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import { resolveDatabaseUrls, type DatabaseUrls } from './databaseUrls.ts';
import { migrateAll } from './migrate.ts';
import { createDatabases, type Databases } from './pools.ts';

export async function openDatabases(
  config: Config,
  logger: Logger,
  processName: string,
): Promise<{ urls: DatabaseUrls; databases: Databases }> {
  const warn = (message: string) => logger.warn(message);
  const urls = await resolveDatabaseUrls(config, warn);
  if (urls.cluster) await migrateAll(urls, warn);
  const databases = await createDatabases(urls, {
    poolSizeMax: config.database.poolSizeMax,
    statementTimeoutMs: config.database.statementTimeoutMs,
    applicationName: `withdraw-${processName}`,
    ledgerRole: config.database.ledgerRole,
    warn,
  });
  return { urls, databases };
}
