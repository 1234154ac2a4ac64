// `npm run migrate` (the Procfile `release`): both databases' migrations and graphile-worker's.
import { failAndExit, loadConfigOrExit } from '../lifecycle.ts';
import { createLogger } from '../logger.ts';
import { resolveDatabaseUrls } from './databaseUrls.ts';
import { migrateAll } from './migrate.ts';

const config = loadConfigOrExit();
const logger = createLogger({ level: config.logLevel, name: 'migrate' });
try {
  const urls = await resolveDatabaseUrls(config, (message) => logger.warn(message));
  const applied = await migrateAll(urls, (message) => logger.warn(message));
  logger.info({ applied }, 'migrations applied');
  await urls.cluster?.stop();
  process.exit(0);
} catch (error) {
  failAndExit(logger, error, 'migration failed');
}
