// `npm run settlement:import -- --date YYYY-MM-DD [--replace] [--as NAME]`   the provider's statement
// `npm run settlement:import -- --file F [--date YYYY-MM-DD] [--replace] [--as NAME]`   a downloaded CSV
// `npm run settlement:match -- --from YYYY-MM-DD [--to YYYY-MM-DD]`   match the stored statements again
//
// Stores a day's settlement statement (the same statement twice changes nothing; a different one for
// a day already imported is kept aside and raises a break until imported again with --replace),
// then matches it with our orders and ledger. Reads go to the *_REPORTS_DATABASE_URL replicas when
// set, breaks to the primary. Exit codes: 0 stored and no breaks, 1 breaks found (or a conflicting
// re-issue), 2 a bad request or a failure (nothing half-stored: each import is one transaction).
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { resolveDatabaseUrls } from '../app/db/databaseUrls.ts';
import { createDatabases, endDatabases } from '../app/db/pools.ts';
import { openReadDatabases } from '../app/db/replicas.ts';
import { createPspHttpAdapter } from '../app/gateway/pspHttpAdapter.ts';
import { loadConfigOrExit } from '../app/lifecycle.ts';
import { createLogger } from '../app/logger.ts';
import { importAndMatch, importFromProvider, type SettlementImportResult } from './settlementImport.ts';
import { matchSettlements, type SettlementMatchSummary } from './settlementMatch.ts';

const EXIT_CLEAN = 0;
const EXIT_BREAKS = 1;
const EXIT_FAILED = 2;
const DATE = /^\d{4}-\d{2}-\d{2}$/;

const [mode, ...rest] = process.argv.slice(2);
const out = (line: string) => process.stdout.write(`${line}\n`);
const fail = (message: string): never => {
  process.stderr.write(`settlement ${mode ?? ''}: ${message}\n`);
  process.exit(EXIT_FAILED);
};

function parse() {
  try {
    return parseArgs({
      args: rest,
      strict: true,
      options: {
        date: { type: 'string' },
        file: { type: 'string' },
        replace: { type: 'boolean', default: false },
        as: { type: 'string', default: 'cli' },
        from: { type: 'string' },
        to: { type: 'string' },
      },
    }).values;
  } catch (error) {
    return fail((error as Error).message);
  }
}

function printMatch(match: SettlementMatchSummary): void {
  out(
    `matched ${match.from === match.to ? match.from : `${match.from}..${match.to}`}: ${match.references} references, ` +
      `${match.ordersLookedFor} paid orders looked for (${match.ordersPending} wait for another day's statement); ` +
      `${match.findings.length} breaks, ${match.breaksResolved} cleared`,
  );
  for (const f of match.findings) out(`  ${f.category} ${f.subject}: expected ${f.expected}; actual ${f.actual}`);
}

function printImport(result: SettlementImportResult): number {
  const { outcome } = result;
  const what = `statement of ${outcome.date} (${outcome.lines} lines)`;
  if (outcome.kind === 'imported') out(`${what}: imported as statement ${outcome.statementId}`);
  if (outcome.kind === 'unchanged') out(`${what}: already imported as statement ${outcome.statementId}; nothing changed`);
  if (outcome.kind === 'replaced') out(`${what}: statement ${outcome.statementId} replaces statement ${outcome.previousId}`);
  if (outcome.kind === 'conflicting') {
    out(
      `${what}: DIFFERS from the current statement ${outcome.currentId} of that day; kept as statement ${outcome.statementId}, ` +
        'not matched, and a settlement_statement_reissued break raised. Import it again with --replace to make it current.',
    );
    return EXIT_BREAKS;
  }
  if (result.match) printMatch(result.match);
  return result.match && result.match.findings.length > 0 ? EXIT_BREAKS : EXIT_CLEAN;
}

async function main(): Promise<number> {
  if (mode !== 'import' && mode !== 'match') return fail('say import or match');
  const values = parse();
  if (mode === 'import') {
    if (values.from || values.to) fail('--from and --to are for settlement:match');
    if (!values.file && !values.date) fail('give --date YYYY-MM-DD (from the provider) or --file F (a downloaded statement)');
    if (values.date && !DATE.test(values.date)) fail(`--date ${JSON.stringify(values.date)} must be YYYY-MM-DD`);
  } else {
    if (values.file || values.date || values.replace) fail('settlement:match takes --from and --to only');
    if (!values.from || !DATE.test(values.from) || (values.to && !DATE.test(values.to))) fail('give --from YYYY-MM-DD [--to YYYY-MM-DD]');
  }
  const csv = values.file ? await readFile(values.file, 'utf8').catch((error: Error) => fail(error.message)) : null;
  const config = loadConfigOrExit();
  const logger = createLogger({
    level: config.logLevel === 'info' ? 'warn' : config.logLevel,
    name: 'settlement',
    destination: process.stderr,
  });
  if (mode === 'import' && csv === null && !config.psp.baseUrl) fail('PSP_BASE_URL is not set: give --file with a downloaded statement');
  const urls = await resolveDatabaseUrls(config, (message) => logger.warn(message));
  const poolOptions = { poolSizeMax: 4, statementTimeoutMs: 600_000, applicationName: 'withdraw-settlement' };
  const databases = await createDatabases(urls, poolOptions);
  const replicas = await openReadDatabases(
    { balance: config.database.reportsBalanceUrl, ledger: config.database.reportsLedgerUrl },
    databases,
    poolOptions,
  );
  const psp = csv === null && config.psp.baseUrl ? createPspHttpAdapter({ baseUrl: config.psp.baseUrl, ...config.gateway }) : null;
  try {
    const common = { databases, reads: replicas.reads, config, logger };
    if (mode === 'match') {
      const match = await matchSettlements({
        primary: databases,
        reads: replicas.reads,
        from: values.from!,
        to: values.to ?? values.from!,
        settleMs: config.reconcile.settleMs,
        replicaWaitMs: config.database.replicaWaitMs,
        logger,
      });
      printMatch(match);
      return match.findings.length > 0 ? EXIT_BREAKS : EXIT_CLEAN;
    }
    const result = csv
      ? await importAndMatch({
          ...common,
          statement: { csv, date: values.date ?? null },
          source: { kind: 'file', name: path.basename(values.file!), importedBy: values.as! },
          replace: values.replace!,
        })
      : await importFromProvider({ ...common, psp: psp!, date: values.date!, importedBy: values.as!, replace: values.replace! });
    return printImport(result);
  } finally {
    await psp?.close();
    await replicas.end();
    await endDatabases(databases);
    await urls.cluster?.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => fail(error instanceof Error ? error.message : String(error)),
);
