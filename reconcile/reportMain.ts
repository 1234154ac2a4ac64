// `npm run --silent report -- <name> [--from ISO] [--to ISO] [--currency USD] [--account <uuid>]
//   [--tz Zone] [--statement-timeout 30s] [--csv]`
//
// Runs one finance report of sql/reports/ on the databases of the configuration (embedded when no
// URL is set) and prints it as an aligned table, or streams it as CSV with --csv. Standard output
// carries the report and nothing else (`--silent` keeps npm's own banner out of it); every note
// goes to standard error. Exit codes: 0 printed, 1 failed (configuration, database), 2 a bad
// request (unknown report, missing or bad parameter).
import { parseArgs } from 'node:util';
import { type Config, ConfigError, loadConfig } from '../app/config.ts';
import { resolveDatabaseUrls, type DatabaseUrls } from '../app/db/databaseUrls.ts';
import { createDatabases, endDatabases, type Databases } from '../app/db/pools.ts';
import { checkReplicas, openReadDatabases, ReplicaTooStaleError } from '../app/db/replicas.ts';
import { REPORT_PARAM_NAMES } from './reportDefinitions.ts';
import {
  csvRecord,
  formatTable,
  listReports,
  loadReport,
  REPORT_STATEMENT_TIMEOUT_MS_DEFAULT,
  REPORT_STATEMENT_TIMEOUT_MS_MAX,
  REPORTER_ROLE,
  reportDatabases,
  ReportDefinitionError,
  ReportInputError,
  streamReport,
  validateReportParams,
  validateTimeZone,
  parseDuration,
  type ReportCell,
  type ReportParamsInput,
  type ReportSink,
} from './reports.ts';

const EXIT_OK = 0;
const EXIT_FAILED = 1;
const EXIT_BAD_REQUEST = 2;
/** A report holds one connection per database at most (a join reads the other one meanwhile). */
const REPORT_POOL_SIZE_MAX = 2;
/** How long a replica may take to replay WAL in flight before its staleness is judged. */
const REPLICA_GRACE_MS = 2_000;
/** A table is for reading on a terminal: past this many rows, ask for --csv (which has no cap). */
export const REPORT_TABLE_ROWS_MAX = 10_000;

const say = (text: string) => process.stderr.write(`${text}\n`);

function usage(): string {
  const reports = listReports().map((report) => {
    const params = report.parameters.map((p) => (p.required ? `--${p.name} <${p.name}>` : `[--${p.name} <${p.name}>]`));
    const where = report.database === 'both' ? 'both databases' : `${report.database} database`;
    return `  ${[report.name, ...params].join(' ')}\n      ${report.description} [${where}]`;
  });
  return [
    'usage: npm run --silent report -- <name> [--from ISO] [--to ISO] [--currency USD] [--account <uuid>]',
    '                                         [--tz Zone] [--statement-timeout 30s] [--csv]',
    '  --from, --to           an ISO 8601 date (midnight in --tz) or instant with a zone; from inclusive, to exclusive',
    '  --tz                   IANA time zone for days and date-only bounds (default UTC); instants print in UTC',
    `  --statement-timeout    per statement: milliseconds, or with s / min (default ${REPORT_STATEMENT_TIMEOUT_MS_DEFAULT / 1000}s, at most ${REPORT_STATEMENT_TIMEOUT_MS_MAX / 60_000}min)`,
    '  --csv                  RFC 4180 CSV, streamed with no row cap (the table stops at 10,000 rows)',
    '',
    'reports:',
    ...reports,
  ].join('\n');
}

type Request = Readonly<{ name: string; input: ReportParamsInput; csv: boolean; timeZone: string; statementTimeoutMs: number }>;

const REPORT_OPTIONS = {
  from: { type: 'string' },
  to: { type: 'string' },
  currency: { type: 'string' },
  account: { type: 'string' },
  tz: { type: 'string' },
  'statement-timeout': { type: 'string' },
  csv: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

function parseCommandLine(argv: string[]) {
  try {
    return parseArgs({ args: argv, allowPositionals: true, strict: true, options: REPORT_OPTIONS });
  } catch (error) {
    throw new ReportInputError(error instanceof Error ? error.message : String(error));
  }
}

function parseRequest(argv: string[]): Request | 'help' {
  const parsed = parseCommandLine(argv);
  if (parsed.values.help) return 'help';
  const [name, ...extra] = parsed.positionals;
  if (!name) throw new ReportInputError('which report? name one');
  if (extra.length > 0) throw new ReportInputError(`one report at a time; unexpected ${extra.map((e) => JSON.stringify(e)).join(' ')}`);
  const input: ReportParamsInput = {};
  for (const param of REPORT_PARAM_NAMES) {
    const value = parsed.values[param];
    if (value !== undefined) input[param] = value;
  }
  return {
    name,
    input,
    csv: parsed.values.csv ?? false,
    timeZone: validateTimeZone(parsed.values.tz ?? 'UTC'),
    statementTimeoutMs: parseDuration(parsed.values['statement-timeout']),
  };
}

/** Writes to stdout and waits when the pipe is full: a slow reader slows the cursor, not memory. */
function writeOut(text: string): Promise<void> | void {
  if (process.stdout.write(text)) return;
  return new Promise((resolve) => process.stdout.once('drain', () => resolve()));
}

function csvSink(): ReportSink {
  return {
    columns: (columns) => writeOut(csvRecord(columns)),
    rows: (rows) => writeOut(rows.map(csvRecord).join('')),
  };
}

/** The table needs every row to align them: it keeps at most REPORT_TABLE_ROWS_MAX. */
function tableSink(reportName: string) {
  const state = { columns: [] as readonly string[], rows: [] as Array<readonly ReportCell[]> };
  const sink: ReportSink = {
    columns: (columns) => {
      state.columns = columns;
    },
    rows: (rows) => {
      if (state.rows.length + rows.length > REPORT_TABLE_ROWS_MAX) {
        throw new ReportInputError(
          `${reportName}: more than ${REPORT_TABLE_ROWS_MAX} rows for a table; use --csv (no cap) or narrow the range`,
        );
      }
      state.rows.push(...rows);
    },
  };
  return { sink, print: () => writeOut(formatTable(state)) };
}

async function main(argv: string[]): Promise<number> {
  let request: Request | 'help';
  try {
    request = parseRequest(argv);
    if (request === 'help') {
      process.stdout.write(`${usage()}\n`);
      return EXIT_OK;
    }
    // judged before any database is touched (an embedded one takes seconds to start)
    validateReportParams(loadReport(request.name), request.input);
  } catch (error) {
    if (error instanceof ReportInputError) {
      say(`report: ${error.message}\n\n${usage()}`);
      return EXIT_BAD_REQUEST;
    }
    throw error;
  }

  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      say(error.message);
      return EXIT_FAILED;
    }
    throw error;
  }
  let urls: DatabaseUrls | null = null;
  let databases: Databases | null = null;
  let replicas: Awaited<ReturnType<typeof openReadDatabases>> | null = null;
  try {
    urls = await resolveDatabaseUrls(config, say);
    databases = await createDatabases(urls, {
      poolSizeMax: REPORT_POOL_SIZE_MAX,
      statementTimeoutMs: config.database.statementTimeoutMs,
      applicationName: 'withdraw-report',
      // reports take their own read-only role per transaction, not the ledger writer's
      ledgerRole: null,
    });
    const report = loadReport(request.name);
    const options = { timeZone: request.timeZone, statementTimeoutMs: request.statementTimeoutMs };
    const values = validateReportParams(report, request.input);
    // reads go to the replicas when configured, after checking how stale they are
    const { reportsBalanceUrl, reportsLedgerUrl, replicaLagMaxMs } = config.database;
    replicas = await openReadDatabases({ balance: reportsBalanceUrl, ledger: reportsLedgerUrl }, databases, {
      poolSizeMax: REPORT_POOL_SIZE_MAX,
      statementTimeoutMs: request.statementTimeoutMs,
      applicationName: 'withdraw-report',
    });
    for (const note of await checkReplicas(databases, replicas.reads, reportDatabases(report), {
      lagMaxMs: replicaLagMaxMs,
      graceMs: REPLICA_GRACE_MS,
    })) {
      say(`note: ${note}`);
    }
    const table = request.csv ? null : tableSink(report.name);
    const result = await streamReport(report, values, replicas.reads, options, table ? table.sink : csvSink());
    if (table) await table.print();
    for (const { database, role } of result.ranAs) {
      if (role === null)
        say(`note: role ${REPORTER_ROLE} is not available on the ${database} database; the report ran as the login user, read-only`);
    }
    return EXIT_OK;
  } catch (error) {
    if (error instanceof ReportInputError) {
      say(`report: ${error.message}`);
      return EXIT_BAD_REQUEST;
    }
    if (error instanceof ReplicaTooStaleError) {
      say(`report ${request.name}: ${error.message}`);
      return EXIT_FAILED;
    }
    say(`report ${request.name} failed: ${describe(error)}`);
    return EXIT_FAILED;
  } finally {
    await replicas?.end();
    if (databases) await endDatabases(databases);
    await urls?.cluster?.stop();
  }
}

function describe(error: unknown): string {
  if (error instanceof ReportDefinitionError) return error.message;
  const code = (error as { code?: unknown; cause?: { code?: unknown } }).code ?? (error as { cause?: { code?: unknown } }).cause?.code;
  const message = error instanceof Error ? error.message : String(error);
  if (code === '42P01' || code === '42883') return `${message} (are the migrations applied? npm run migrate)`;
  return message;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    say(`report failed: ${error instanceof Error ? error.stack : String(error)}`);
    process.exit(EXIT_FAILED);
  },
);
