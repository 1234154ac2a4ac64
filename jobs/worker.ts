// The worker process (Procfile `worker`): outbox relays, ledger postings, gateway submissions,
// provider callbacks, crons. Scale it with more processes: SKIP LOCKED makes that safe.
import { openDatabases } from '../app/db/openDatabases.ts';
import { endDatabases } from '../app/db/pools.ts';
import { createPspHttpAdapter } from '../app/gateway/pspHttpAdapter.ts';
import { failAndExit, installShutdown, loadConfigOrExit } from '../app/lifecycle.ts';
import { createLogger } from '../app/logger.ts';
import { startWorkerProcess } from './workerApp.ts';

const config = loadConfigOrExit();
const logger = createLogger({ level: config.logLevel, name: 'worker' });

try {
  if (!config.psp.baseUrl) {
    throw new Error('PSP_BASE_URL is not set: the worker needs the payout provider (npm start sets it to the simulator)');
  }
  const { urls, databases } = await openDatabases(config, logger, 'worker');
  const psp = createPspHttpAdapter({ baseUrl: config.psp.baseUrl, ...config.gateway });
  const worker = await startWorkerProcess({
    config,
    databases,
    balanceUrl: urls.balanceUrl,
    ledgerUrl: urls.ledgerUrl,
    psp,
    logger,
    onRunnerLost: (error) => {
      // jobs it held stay locked until the watchdog of another (or the restarted) worker frees them
      logger.fatal({ err: error }, 'job runner lost; exiting so that the process is restarted');
      process.exit(1);
    },
  });
  installShutdown(
    logger,
    () => [
      { name: 'worker', run: () => worker.stop() },
      { name: 'psp', run: () => psp.close() },
      { name: 'databases', run: () => endDatabases(databases) },
      {
        name: 'embedded postgres',
        run: async () => {
          await urls.cluster?.stop();
        },
      },
    ],
    config.worker.shutdownGraceMs + 5_000,
  );
  logger.info({ workerId: worker.workerId() }, 'worker started');
} catch (error) {
  failAndExit(logger, error, 'worker failed to start');
}
