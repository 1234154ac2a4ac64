// `npm run psp-sim`: the payout provider simulator as its own process.
// Configuration is read once here, validated, and passed down; a bad value stops the process
// with a message naming the variable (contract: "Configuration is validated at start").
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { z } from 'zod';
import { createPspSimulator, knobsFromEnv, type Knobs } from './pspSimulator.ts';
import { processEnvironment } from '../../config.ts';

/** The web process (app/config.ts) requires the same, so a secret one accepts the other does too. */
const WEBHOOK_SECRET_LENGTH_MIN = 16;
/** stop() normally takes milliseconds; past this the process exits anyway. */
const SHUTDOWN_TIMEOUT_MS = 5_000;

const Env = z.object({
  PORT: z.coerce.number().int().min(0).max(65_535).default(3000),
  PSP_SIM_PORT: z.coerce.number().int().min(0).max(65_535).default(4010),
  PSP_SIM_HOST: z.string().min(1).default('127.0.0.1'),
  PSP_CALLBACK_URL: z
    .string()
    .url()
    .refine((url) => /^https?:$/.test(new URL(url).protocol), 'must be an http(s) URL')
    .optional(),
  // Comma-separated during rotation, as the web process reads it; we sign with the first.
  PSP_WEBHOOK_SECRET: z
    .string()
    .refine(
      (value) => value.split(',').every((secret) => secret.trim().length >= WEBHOOK_SECRET_LENGTH_MIN),
      `every comma-separated secret must be at least ${WEBHOOK_SECRET_LENGTH_MIN} characters`,
    )
    .optional(),
  PSP_SIM_SEED: z.coerce
    .number()
    .int()
    .min(0)
    .max(2 ** 32 - 1)
    .optional(),
});

type PspSimConfig = {
  port: number;
  host: string;
  callbackUrl: string;
  webhookSecret: string;
  webhookSecretGenerated: boolean;
  seed: number | undefined;
  knobs: Knobs;
};

/** Unset and empty are the same thing for every variable. */
function withoutEmpty(env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined && entry[1] !== ''));
}

/** Throws an Error whose message names every bad variable. */
function loadConfig(env: NodeJS.ProcessEnv): PspSimConfig {
  const present = withoutEmpty(env);
  const parsed = Env.safeParse(present);
  if (!parsed.success) {
    throw new Error(parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; '));
  }
  const knobs = knobsFromEnv(present);
  const values = parsed.data;
  if (values.PSP_CALLBACK_URL === undefined && values.PORT === 0) {
    throw new Error('PSP_CALLBACK_URL: required when PORT is 0 (the web port is not known in advance)');
  }
  const webhookSecret = values.PSP_WEBHOOK_SECRET?.split(',')[0]?.trim() ?? randomBytes(32).toString('hex');
  return {
    port: values.PSP_SIM_PORT,
    host: values.PSP_SIM_HOST,
    callbackUrl: values.PSP_CALLBACK_URL ?? `http://127.0.0.1:${values.PORT}/withdraw/notify`,
    webhookSecret,
    webhookSecretGenerated: values.PSP_WEBHOOK_SECRET === undefined,
    seed: values.PSP_SIM_SEED,
    knobs,
  };
}

async function main(): Promise<void> {
  const logger = pino({ name: 'psp-sim' });
  let config: PspSimConfig;
  try {
    config = loadConfig(processEnvironment());
  } catch (error) {
    logger.fatal(`psp-sim: invalid configuration: ${(error as Error).message}`);
    process.exitCode = 1;
    return;
  }
  if (config.webhookSecretGenerated) {
    // Printed on purpose: without it nobody could verify our callbacks.
    logger.warn(
      { PSP_WEBHOOK_SECRET: config.webhookSecret },
      'PSP_WEBHOOK_SECRET is unset: generated a random one; start the web process with the same PSP_WEBHOOK_SECRET or it will reject every callback',
    );
  }

  const simulator = createPspSimulator({
    port: config.port,
    host: config.host,
    callbackUrl: config.callbackUrl,
    webhookSecret: config.webhookSecret,
    knobs: config.knobs,
    ...(config.seed === undefined ? {} : { seed: config.seed }),
    logger,
  });
  await simulator.start();

  let stopping = false;
  const shutdown = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'psp-sim: stopping');
    setTimeout(() => {
      logger.error({ timeoutMs: SHUTDOWN_TIMEOUT_MS }, 'psp-sim: stop timed out, exiting');
      process.exit(1);
    }, SHUTDOWN_TIMEOUT_MS).unref();
    simulator.stop().then(
      () => {
        process.exitCode = 0;
      },
      (error: unknown) => {
        logger.error({ err: error }, 'psp-sim: stop failed');
        process.exitCode = 1;
      },
    );
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}

await main();
