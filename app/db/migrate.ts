// Brings both databases to what this build ships, in three steps per database: the numbered
// migrations (tables, indexes, constraints, grants, data moves; plain SQL, one transaction per run,
// serialized by node-pg-migrate's advisory lock), graphile-worker's schema in the Balance DB, then
// every function and trigger under sql/<database>/functions/ (one file per function, `create or
// replace`, all in one transaction). See sql/README.md.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { Logger, runMigrations } from 'graphile-worker';
import { runner } from 'node-pg-migrate';
import pg from 'pg';
import { sqlDir } from '../paths.ts';

export const MIGRATIONS_TABLE = 'schema_migrations';
export const FUNCTIONS_TABLE = 'schema_functions';
export type MigrationSet = 'balance' | 'ledger';
export type MigrateLog = (message: string) => void;

/** Serializes concurrent appliers of the functions layer (two releases at once, say). */
const FUNCTIONS_LOCK_KEY = 'withdraw-system:functions';

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

export type FunctionFile = Readonly<{ file: string; text: string; sha256: string }>;

/** The function files this build ships for one database, in name order. */
export function functionFiles(set: MigrationSet): FunctionFile[] {
  const dir = sqlDir(set, 'functions');
  return readdirSync(dir)
    .filter((file) => file.endsWith('.sql'))
    .sort()
    .map((file) => {
      const text = readFileSync(`${dir}/${file}`, 'utf8');
      return { file, text, sha256: createHash('sha256').update(text).digest('hex') };
    });
}

/**
 * Applies every function file of one database in ONE transaction, with function bodies not checked
 * at creation (so a file may name a function another file defines). Idempotent: every file is
 * `create or replace`. A file that fails rolls the whole set back and names itself.
 */
export async function applyFunctions(databaseUrl: string, set: MigrationSet): Promise<number> {
  const files = functionFiles(set);
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query('begin');
    await client.query('select pg_advisory_xact_lock(hashtextextended($1, 0))', [FUNCTIONS_LOCK_KEY]);
    await client.query('set local check_function_bodies = off');
    for (const { file, text } of files) {
      try {
        await client.query(text);
      } catch (error) {
        throw new Error(`sql/${set}/functions/${file}: ${(error as Error).message}`, { cause: error });
      }
    }
    await client.query(
      `insert into ${FUNCTIONS_TABLE} (file, sha256) select * from unnest($1::text[], $2::text[])
       on conflict (file) do update set sha256 = excluded.sha256, applied_at = now()
        where ${FUNCTIONS_TABLE}.sha256 is distinct from excluded.sha256`,
      [files.map((f) => f.file), files.map((f) => f.sha256)],
    );
    await client.query(`delete from ${FUNCTIONS_TABLE} where not (file = any($1::text[]))`, [files.map((f) => f.file)]);
    await client.query('commit');
    return files.length;
  } catch (error) {
    await client.query('rollback').catch(() => {});
    throw error;
  } finally {
    await client.end();
  }
}

export async function migrateAll(
  urls: Readonly<{ balanceUrl: string; ledgerUrl: string }>,
  log: MigrateLog = () => {},
): Promise<{ balance: string[]; ledger: string[] }> {
  const balance = await migrateDirectory(urls.balanceUrl, 'balance', log);
  const ledger = await migrateDirectory(urls.ledgerUrl, 'ledger', log);
  await runMigrations({ connectionString: urls.balanceUrl, logger: silentGraphileLogger });
  await applyFunctions(urls.balanceUrl, 'balance');
  await applyFunctions(urls.ledgerUrl, 'ledger');
  return { balance, ledger };
}

/** The migration names shipped with this build, in order (what /readyz expects to be applied). */
export function expectedMigrations(set: MigrationSet): string[] {
  return readdirSync(sqlDir(set))
    .filter((file) => file.endsWith('.sql'))
    .sort()
    .map((file) => file.replace(/\.sql$/, ''));
}
