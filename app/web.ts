// The web process (Procfile `web`): public API, admin API, gateway API, provider callbacks.
import { resolveDatabaseUrls } from './db/databaseUrls.ts';
import { migrateAll } from './db/migrate.ts';
import { createDatabases, endDatabases } from './db/pools.ts';
import { failAndExit, installShutdown, loadConfigOrExit } from './lifecycle.ts';
import { createLogger } from './logger.ts';
import { startWebProcess } from './webApp.ts';

const config = loadConfigOrExit();
const logger = createLogger({ level: config.logLevel, name: 'web' });

try {
  const urls = await resolveDatabaseUrls(config, (message) => logger.warn(message));
  // standalone on an embedded database there is no release phase to migrate it
  if (urls.cluster) await migrateAll(urls, (message) => logger.warn(message));
  const databases = await createDatabases(urls, {
    poolSizeMax: config.database.poolSizeMax,
    statementTimeoutMs: config.database.statementTimeoutMs,
    applicationName: 'withdraw-web',
    ledgerRole: config.database.ledgerRole,
    warn: (message) => logger.warn(message),
  });
  const web = await startWebProcess({ config, databases, balanceUrl: urls.balanceUrl, logger });
  installShutdown(logger, () => [
    { name: 'http', run: () => web.close() },
    { name: 'databases', run: () => endDatabases(databases) },
    { name: 'embedded postgres', run: async () => { await urls.cluster?.stop(); } },
  ]);
  logger.info({ url: web.url }, 'web listening');
} catch (error) {
  failAndExit(logger, error, 'web failed to start');
}
