// `npm start`: the whole system on one machine (app/supervisor.ts), a funded demo user in
// development, and how to use it.
import { randomBytes } from 'node:crypto';
import { v5 as uuidv5 } from 'uuid';
import { insertOperator, operatorForLogin, setOperatorPassword } from './admin/operatorQueries.ts';
import { hashPassword } from './admin/passwords.ts';
import { creditAccount, insertAccount, listUserAccountFacts } from './balance/accountQueries.ts';
import { createDatabases, type Databases, endDatabases } from './db/pools.ts';
import { signUserToken } from './http/auth.ts';
import { failAndExit, installShutdown, loadConfigOrExit } from './lifecycle.ts';
import { createLogger } from './logger.ts';
import { launchSystem } from './supervisor.ts';

const DEMO_USER_ID = 'demo-user';
const DEMO_OPERATOR_LOGIN = 'demo-admin';
const DEMO_CREDIT_MINOR = 100_000n; // 1,000.00 USD
// a fixed id per account: restarting never credits the demo wallet twice
const DEMO_NAMESPACE = '6f1c2a0e-4a43-4d6b-9a51-3c1f2e9b7d10';
const READY_TIMEOUT_MS = 90_000;

const config = loadConfigOrExit();
const logger = createLogger({ level: config.logLevel, name: 'main' });

type Demo = { accountId: string; operatorPassword: string };

async function seedDemo(urls: { balanceUrl: string; ledgerUrl: string }): Promise<Demo> {
  const databases = await createDatabases(urls, { poolSizeMax: 2, statementTimeoutMs: 10_000, applicationName: 'withdraw-main' });
  try {
    return { accountId: await seedDemoUser(databases), operatorPassword: await seedDemoOperator(databases) };
  } finally {
    await endDatabases(databases);
  }
}

async function seedDemoUser(databases: Databases): Promise<string> {
  const existing = await listUserAccountFacts(databases.balance, DEMO_USER_ID);
  const accountId = existing[0]?.accountId ?? (await insertAccount(databases.balance, { userId: DEMO_USER_ID, currency: 'USD' })).accountId;
  await creditAccount(databases.balance, {
    transactionId: uuidv5(`demo-credit:${accountId}`, DEMO_NAMESPACE),
    accountId,
    amountMinor: DEMO_CREDIT_MINOR,
    actor: 'seed',
  });
  return accountId;
}

/** The console's demo admin: made on the first start, given a fresh password on every start (development only). */
async function seedDemoOperator(databases: Databases): Promise<string> {
  const password = randomBytes(12).toString('base64url');
  const passwordHash = await hashPassword(password);
  const existing = await operatorForLogin(databases.balance, DEMO_OPERATOR_LOGIN);
  if (existing) {
    await setOperatorPassword(databases.balance, String(existing.operatorId), passwordHash);
  } else {
    const created = await insertOperator(databases.balance, {
      login: DEMO_OPERATOR_LOGIN,
      displayName: 'Demo admin',
      role: 'admin',
      passwordHash,
      createdBy: 'seed',
    });
    if (created === 'login_taken') throw new Error(`the demo operator ${DEMO_OPERATOR_LOGIN} appeared while it was being made`);
  }
  return password;
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
  const demo = config.nodeEnv === 'production' ? null : await seedDemo(launched.urls);
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
    `  console     ${webUrl}/admin/ (operators sign in; the admin API takes the admin token)`,
    ...(demo
      ? [
          `  operator    ${DEMO_OPERATOR_LOGIN} / ${demo.operatorPassword} (role admin; a new password on every start)`,
          `  demo user   ${DEMO_USER_ID}, account ${demo.accountId} (USD, funded)`,
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
