// Starts the real web process (in this test process) on fresh databases, with known secrets.
import { v4 as uuidv4, v7 as uuidv7 } from 'uuid';
import { loadConfig, type Config } from '../../app/config.ts';
import { signUserToken } from '../../app/http/auth.ts';
import { createLogger, type Logger } from '../../app/logger.ts';
import { startWebProcess, type WebProcess } from '../../app/webApp.ts';
import { call, type JsonReply } from './http.ts';
import { createTestDatabases, type TestDatabases } from './testDatabases.ts';

export const TEST_SECRETS = {
  AUTH_JWT_SECRET: 'test-jwt-secret-0123456789-abcdefghijklmnop',
  ADMIN_TOKEN: 'test-admin-token-0123456789',
  INTERNAL_TOKEN: 'test-internal-token-0123456789',
  PSP_WEBHOOK_SECRET: 'test-webhook-secret-0123456789',
} as const;

export type TestSystem = Readonly<{
  db: TestDatabases;
  config: Config;
  logger: Logger;
  web: WebProcess;
  url: string;
  adminToken: string;
  userToken: (userId: string, ttlSeconds?: number) => Promise<string>;
  /** creates an account for userId and credits it */
  fundedAccount: (userId: string, amount: string, currency?: string) => Promise<string>;
  withdraw: (token: string, body: unknown, key?: string) => Promise<JsonReply>;
  stop: () => Promise<void>;
}>;

export function testConfig(db: Pick<TestDatabases, 'balanceUrl' | 'ledgerUrl'>, extra: Record<string, string> = {}): Config {
  return loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    PORT: '0',
    BALANCE_DATABASE_URL: db.balanceUrl,
    LEDGER_DATABASE_URL: db.ledgerUrl,
    ...TEST_SECRETS,
    ...extra,
  });
}

export async function startTestSystem(options: { env?: Record<string, string>; db?: TestDatabases } = {}): Promise<TestSystem> {
  const db = options.db ?? (await createTestDatabases());
  const config = testConfig(db, options.env);
  const logger = createLogger({ level: config.logLevel, name: 'test-web' });
  const web = await startWebProcess({ config, databases: db.databases, logger });
  const adminToken = TEST_SECRETS.ADMIN_TOKEN;

  async function fundedAccount(userId: string, amount: string, currency = 'USD'): Promise<string> {
    const created = await call(web.url, 'POST', '/admin/accounts', { token: adminToken, body: { userId, currency } });
    if (created.status !== 201) throw new Error(`create account: ${created.status} ${created.text}`);
    const accountId = created.body.data.accountId as string;
    const credited = await call(web.url, 'POST', `/admin/accounts/${accountId}/credits`, {
      token: adminToken,
      body: { amount, transactionId: uuidv4() },
    });
    if (credited.status !== 200) throw new Error(`credit: ${credited.status} ${credited.text}`);
    return accountId;
  }

  return {
    db,
    config,
    logger,
    web,
    url: web.url,
    adminToken,
    userToken: (userId, ttlSeconds) => signUserToken(TEST_SECRETS.AUTH_JWT_SECRET, userId, ttlSeconds),
    fundedAccount,
    withdraw: (token, body, key = uuidv7()) =>
      call(web.url, 'POST', '/withdraw', { token, body, headers: { 'idempotent-key': key } }),
    stop: async () => {
      await web.close(1_000);
      if (!options.db) await db.drop();
    },
  };
}
