// One shutdown sequence per process: the first SIGTERM/SIGINT runs the steps in order within a
// grace period (the PaaS sends SIGTERM, then SIGKILL after ~30 s); a second signal exits at once.
import type { Logger } from './logger.ts';
import { ConfigError, loadConfig, type Config } from './config.ts';

export type ShutdownStep = Readonly<{ name: string; run: () => Promise<void> }>;

export function installShutdown(logger: Logger, steps: () => readonly ShutdownStep[], graceMs = 25_000): () => Promise<void> {
  let running: Promise<void> | null = null;
  const shutdown = () => {
    running ??= (async () => {
      const timer = setTimeout(() => {
        logger.error({ graceMs }, 'shutdown grace period exceeded; exiting');
        process.exit(1);
      }, graceMs);
      timer.unref();
      for (const step of steps()) {
        try {
          await step.run();
        } catch (error) {
          logger.error({ err: error, step: step.name }, 'shutdown step failed');
        }
      }
      clearTimeout(timer);
    })();
    return running;
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (running) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    logger.info({ signal }, 'shutting down');
    void shutdown().then(() => process.exit(0));
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return shutdown;
}

/** Parses the configuration, or exits with a message that names the bad variables. */
export function loadConfigOrExit(env?: NodeJS.ProcessEnv): Config {
  try {
    return loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
}

export function failAndExit(logger: Logger, error: unknown, message: string): never {
  logger.fatal({ err: error }, message);
  process.stderr.write(`${message}: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
}
