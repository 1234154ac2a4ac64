// `npm start`: the whole system on one machine (app/supervisor.ts), a funded demo user in
// development, and how to use it.
import { v5 as uuidv5 } from 'uuid';
import { creditAccount, insertAccount, listUserAccountFacts } from './balance/accountQueries.ts';
import { createDatabases, endDatabases } from './db/pools.ts';
import { signUserToken } from './http/auth.ts';
import { failAndExit, installShutdown, loadConfigOrExit } from './lifecycle.ts';
import { createLogger } from './logger.ts';
import { launchSystem } from './supervisor.ts';

const DEMO_USER_ID = 'demo-user';
const DEMO_CREDIT_MINOR = 100_000n; // 1,000.00 USD
// a fixed id per account: restarting never credits the demo wallet twice
const DEMO_NAMESPACE = '6f1c2a0e-4a43-4d6b-9a51-3c1f2e9b7d10';
const READY_TIMEOUT_MS = 90_000;

const config = loadConfigOrExit();
const logger = createLogger({ level: config.logLevel, name: 'main' });

async function seedDemoUser(urls: { balanceUrl: string; ledgerUrl: string }): Promise<string> {
  const databases = await createDatabases(urls, { poolSizeMax: 2, statementTimeoutMs: 10_000, applicationName: 'withdraw-main' });
  try {
    const existing = await listUserAccountFacts(databases.balance, DEMO_USER_ID);
    const accountId =
      existing[0]?.accountId ?? (await insertAccount(databases.balance, { userId: DEMO_USER_ID, currency: 'USD' })).accountId;
    await creditAccount(databases.balance, {
      transactionId: uuidv5(`demo-credit:${accountId}`, DEMO_NAMESPACE),
      accountId,
      amountMinor: DEMO_CREDIT_MINOR,
      actor: 'seed',
    });
    return accountId;
  } finally {
    await endDatabases(databases);
  }
}

let system: Awaited<ReturnType<typeof launchSystem>> | null = null;

async function main(): Promise<void> {
  system = await launchSystem({ config, logger, workers: 1 });
  installShutdown(
    logger,
    () => [
      {
        name: 'system',
        run: async () => {
          await system?.stop();
        },
      },
    ],
    45_000,
  );
  const launched = system;
  const demoAccountId = config.nodeEnv === 'production' ? null : await seedDemoUser(launched.urls);
  await launched.waitForReady(READY_TIMEOUT_MS);
  const webUrl = launched.webUrl;
  const demoToken = await signUserToken(config.auth.jwtSecret, DEMO_USER_ID, 7 * 24 * 3600);
  const cluster = launched.urls.cluster;
  const lines = [
    '',
    `withdraw system is up: ${webUrl}`,
    `  databases   ${cluster ? `embedded PostgreSQL in ${cluster.dataDir} (port ${cluster.port})` : 'BALANCE_DATABASE_URL and LEDGER_DATABASE_URL'}`,
    `  provider    ${launched.pspBaseUrl}${launched.simulated ? ' (simulator: POST /control sets its fault knobs)' : ''}`,
    `  admin token ${config.auth.adminToken}`,
    `  dashboard   ${webUrl}/admin/ (paste the admin token)`,
    ...(demoAccountId
      ? [
          `  demo user   ${DEMO_USER_ID}, account ${demoAccountId} (USD, funded)`,
          `  demo token  ${demoToken}`,
          '',
          'try:',
          `  TOKEN=${demoToken}`,
          `  curl -s -X POST ${webUrl}/withdraw -H "Authorization: Bearer $TOKEN" \\`,
          `    -H "idempotent-key: $(node -e "import('uuid').then(u=>console.log(u.v7()))")" \\`,
          `    -H 'Content-Type: application/json' -d '{"toAccountId":"bank-123","amount":12.34}'`,
          `  curl -s "${webUrl}/withdraw/<withdrawOrderId>?waitMs=5000&status=init" -H "Authorization: Bearer $TOKEN"`,
        ]
      : []),
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch(async (error: unknown) => {
  await system?.stop().catch(() => {});
  failAndExit(logger, error, 'npm start failed');
});
