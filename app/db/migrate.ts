// Applies the Balance DB and Ledger DB migrations (numbered plain SQL, one transaction per run,
// serialized by node-pg-migrate's advisory lock) and graphile-worker's schema in the Balance DB.
import { readdirSync } from 'node:fs';
import { Logger, runMigrations } from 'graphile-worker';
import { runner } from 'node-pg-migrate';
import { sqlDir } from '../paths.ts';

export const MIGRATIONS_TABLE = 'schema_migrations';
export type MigrationSet = 'balance' | 'ledger';
export type MigrateLog = (message: string) => void;

const silentGraphileLogger = new Logger(() => () => {});

async function migrateDirectory(databaseUrl: string, set: MigrationSet, log: MigrateLog): Promise<string[]> {
  const applied = await runner({
    databaseUrl,
    dir: sqlDir(set),
    direction: 'up',
    migrationsTable: MIGRATIONS_TABLE,
    singleTransaction: true,
    checkOrder: true,
    advisoryLockMode: 'wait',
    log: () => {},
    logger: { debug: () => {}, info: () => {}, warn: log, error: log },
  });
  return applied.map((migration) => migration.name);
}

export async function migrateAll(
  urls: Readonly<{ balanceUrl: string; ledgerUrl: string }>,
  log: MigrateLog = () => {},
): Promise<{ balance: string[]; ledger: string[] }> {
  const balance = await migrateDirectory(urls.balanceUrl, 'balance', log);
  const ledger = await migrateDirectory(urls.ledgerUrl, 'ledger', log);
  await runMigrations({ connectionString: urls.balanceUrl, logger: silentGraphileLogger });
  return { balance, ledger };
}

/** The migration names shipped with this build, in order (what /readyz expects to be applied). */
export function expectedMigrations(set: MigrationSet): string[] {
  return readdirSync(sqlDir(set))
    .filter((file) => file.endsWith('.sql'))
    .sort()
    .map((file) => file.replace(/\.sql$/, ''));
}
