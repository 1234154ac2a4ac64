// The web process (Procfile `web`): public API, admin API, gateway API, provider callbacks.
import { openDatabases } from './db/openDatabases.ts';
import { endDatabases } from './db/pools.ts';
import { failAndExit, installShutdown, loadConfigOrExit } from './lifecycle.ts';
import { createLogger } from './logger.ts';
import { startWebProcess } from './webApp.ts';

const config = loadConfigOrExit();
const logger = createLogger({ level: config.logLevel, name: 'web' });

try {
  const { urls, databases } = await openDatabases(config, logger, 'web');
  const web = await startWebProcess({ config, databases, balanceUrl: urls.balanceUrl, logger });
  installShutdown(logger, () => [
    { name: 'http', run: () => web.close() },
    { name: 'databases', run: () => endDatabases(databases) },
    {
      name: 'embedded postgres',
      run: async () => {
        await urls.cluster?.stop();
      },
    },
  ]);
  logger.info({ url: web.url }, 'web listening');
} catch (error) {
  failAndExit(logger, error, 'web failed to start');
}
