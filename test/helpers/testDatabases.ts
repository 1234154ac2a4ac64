// Fresh Balance and Ledger databases for one test file, cloned from the migrated templates that
// test/run.ts prepared.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { LEDGER_DB_ROLE_DEFAULT } from '../../app/config.ts';
import { createDatabases, endDatabases, type Databases } from '../../app/db/pools.ts';

export type TestDatabases = Readonly<{
  balanceUrl: string;
  ledgerUrl: string;
  databases: Databases;
  /** a plain pg client on a database, for checks and fault injection outside the app's pools */
  client: (which: 'balance' | 'ledger') => Promise<pg.Client>;
  drop: () => Promise<void>;
}>;

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the tests with \`npm test\` (test/run.ts prepares the databases)`);
  return value;
}

function urlFor(adminUrl: string, database: string): string {
  const parsed = new URL(adminUrl);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

async function withAdmin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: env('TEST_PG_ADMIN_URL') });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function cloneTemplate(client: pg.Client, name: string, template: string): Promise<void> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      await client.query(`create database ${client.escapeIdentifier(name)} template ${client.escapeIdentifier(template)}`);
      return;
    } catch (error) {
      // another file is cloning the same template at this instant
      if (attempt >= 20 || !/being accessed by other users/.test((error as Error).message)) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
    }
  }
}

/** `ledgerRole`: the role the Ledger DB pool runs as, as the app's (LEDGER_DB_ROLE); null for the login user. */
export async function createTestDatabases(options: { poolSizeMax?: number; ledgerRole?: string | null } = {}): Promise<TestDatabases> {
  const suffix = randomBytes(5).toString('hex');
  const balanceName = `wtest_b_${suffix}`;
  const ledgerName = `wtest_l_${suffix}`;
  await withAdmin(async (client) => {
    await cloneTemplate(client, balanceName, env('TEST_BALANCE_TEMPLATE'));
    await cloneTemplate(client, ledgerName, env('TEST_LEDGER_TEMPLATE'));
  });
  const adminUrl = env('TEST_PG_ADMIN_URL');
  const balanceUrl = urlFor(adminUrl, balanceName);
  const ledgerUrl = urlFor(adminUrl, ledgerName);
  const databases = await createDatabases(
    { balanceUrl, ledgerUrl },
    {
      poolSizeMax: options.poolSizeMax ?? 20,
      statementTimeoutMs: 30_000,
      applicationName: 'withdraw-test',
      ledgerRole: options.ledgerRole === undefined ? LEDGER_DB_ROLE_DEFAULT : options.ledgerRole,
    },
  );
  const clients: pg.Client[] = [];
  return {
    balanceUrl,
    ledgerUrl,
    databases,
    client: async (which) => {
      const client = new pg.Client({ connectionString: which === 'balance' ? balanceUrl : ledgerUrl });
      client.on('error', () => {});
      await client.connect();
      clients.push(client);
      return client;
    },
    drop: async () => {
      await Promise.allSettled(clients.map((c) => c.end()));
      await endDatabases(databases);
      await withAdmin(async (client) => {
        await client.query(`drop database if exists ${client.escapeIdentifier(balanceName)} with (force)`);
        await client.query(`drop database if exists ${client.escapeIdentifier(ledgerName)} with (force)`);
      });
    },
  };
}
