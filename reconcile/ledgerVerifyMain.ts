// `npm run ledger:verify [-- --json] [--batch-size=N] [--breaks-max=N]`: verifies the Ledger DB's
// hash chains, running balances, account projections and journal balance (reconcile/ledgerVerify.ts).
// Exit 0: clean; 1: at least one break; 2: bad usage or configuration, or the database could not
// be read. With no database URLs it reads the embedded cluster of `npm start`.
import { ConfigError, loadConfig, type Config } from '../app/config.ts';
import { resolveDatabaseUrls, type DatabaseUrls } from '../app/db/databaseUrls.ts';
import { createDatabasePool } from '../app/db/pools.ts';
import {
  LEDGER_VERIFY_BATCH_SIZE_DEFAULT,
  LEDGER_VERIFY_BATCH_SIZE_MAX,
  LEDGER_VERIFY_BREAKS_DEFAULT,
  LEDGER_VERIFY_BREAKS_MAX,
  verifyLedger,
  type LedgerBreak,
  type LedgerVerification,
} from './ledgerVerify.ts';

const EXIT_CLEAN = 0;
const EXIT_BREAKS = 1;
const EXIT_ERROR = 2;

const USAGE = `usage: npm run ledger:verify [-- --json] [--batch-size=N (1..${LEDGER_VERIFY_BATCH_SIZE_MAX})] [--breaks-max=N (1..${LEDGER_VERIFY_BREAKS_MAX})]
Database: LEDGER_DATABASE_URL and BALANCE_DATABASE_URL, or the embedded cluster when neither is set.
Exit status: 0 clean, 1 breaks found, 2 usage, configuration or database error.`;

class UsageError extends Error {
  override readonly name = 'UsageError';
}

type Arguments = Readonly<{ json: boolean; batchSizeMax: number; breaksMax: number; help: boolean }>;

function parseArguments(argv: readonly string[]): Arguments {
  let json = false;
  let help = false;
  let batchSizeMax = LEDGER_VERIFY_BATCH_SIZE_DEFAULT;
  let breaksMax = LEDGER_VERIFY_BREAKS_DEFAULT;
  const integer = (flag: string, value: string, max: number) => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < 1 || n > max) throw new UsageError(`${flag} must be an integer in 1..${max}`);
    return n;
  };
  for (const arg of argv) {
    const [flag = '', value = ''] = arg.split('=', 2);
    if (arg === '--json') json = true;
    else if (arg === '--help' || arg === '-h') help = true;
    else if (flag === '--batch-size') batchSizeMax = integer(flag, value, LEDGER_VERIFY_BATCH_SIZE_MAX);
    else if (flag === '--breaks-max') breaksMax = integer(flag, value, LEDGER_VERIFY_BREAKS_MAX);
    else throw new UsageError(`unknown argument ${arg}`);
  }
  return { json, help, batchSizeMax, breaksMax };
}

function describeBreak(b: LedgerBreak): string {
  const where = [
    b.accountCode !== null ? `account ${b.accountCode}` : null,
    b.sequence !== null ? `sequence ${b.sequence}` : null,
    b.entryId !== null ? `entry ${b.entryId}` : null,
    b.journalId !== null ? `journal ${b.journalId}` : null,
    b.day !== null ? `day ${b.day}` : null,
  ]
    .filter(Boolean)
    .join(', ');
  return `BREAK ${b.kind} (${where}): expected ${b.expected}, found ${b.found}`;
}

function report(result: LedgerVerification, elapsedMs: number, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(result, (_key, value) => (typeof value === 'bigint' ? value.toString() : value), 2)}\n`);
    return;
  }
  const lines = result.breaks.map(describeBreak);
  if (result.breakCount > result.breaks.length) lines.push(`… and ${result.breakCount - result.breaks.length} more (raise --breaks-max)`);
  lines.push(
    `ledger verify: ${result.accountsChecked} accounts, ${result.entriesChecked} entries, ${result.journalsChecked} journals, ` +
      `${result.checkpointsChecked} checkpoints (closed through ${result.closedThrough ?? 'no day'}) ` +
      `checked in ${elapsedMs} ms: ${result.clean ? 'clean' : `${result.breakCount} break(s)`}`,
  );
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function main(): Promise<number> {
  let args: Arguments;
  let config: Config;
  try {
    args = parseArguments(process.argv.slice(2));
    config = loadConfig();
  } catch (error) {
    if (!(error instanceof UsageError || error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n${USAGE}\n`);
    return EXIT_ERROR;
  }
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT_CLEAN;
  }
  let urls: DatabaseUrls | null = null;
  try {
    urls = await resolveDatabaseUrls(config, (message) => process.stderr.write(`${message}\n`));
    // read-only work: the login user is enough, and the verifier needs no role of the application's
    const pool = await createDatabasePool(urls.ledgerUrl, {
      poolSizeMax: 1,
      statementTimeoutMs: config.database.statementTimeoutMs,
      applicationName: 'withdraw-ledger-verify',
    });
    try {
      const started = Date.now();
      const result = await verifyLedger(pool, { batchSizeMax: args.batchSizeMax, breaksMax: args.breaksMax });
      report(result, Date.now() - started, args.json);
      return result.clean ? EXIT_CLEAN : EXIT_BREAKS;
    } finally {
      await pool.end();
    }
  } catch (error) {
    process.stderr.write(`ledger verify could not read the Ledger DB: ${error instanceof Error ? error.message : String(error)}\n`);
    return EXIT_ERROR;
  } finally {
    await urls?.cluster?.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`ledger verify failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(EXIT_ERROR);
  },
);
