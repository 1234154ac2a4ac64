// Finance reports: run a file of sql/reports/ with bound parameters in a read-only snapshot, and
// render the result as an aligned table or RFC 4180 CSV. `npm run report` (reportMain.ts) is the
// command line around this; the bench and the tests call it directly.
import { sql, type DatabasePoolConnection, type QuerySqlToken } from 'slonik';
import { z } from 'zod';
import type { Databases } from '../app/db/pools.ts';
import { CURRENCIES } from '../app/money/money.ts';
import {
  loadReport,
  REPORT_PARAMETER_TYPES,
  ReportInputError,
  reportNames,
  type ReportDatabase,
  type ReportDefinition,
  type ReportParamName,
} from './reportDefinitions.ts';

export { loadReport, loadReportFile, ReportDefinitionError, ReportInputError, REPORTS_DIR } from './reportDefinitions.ts';
export type { ReportDefinition, ReportParamName } from './reportDefinitions.ts';

/** The read-only role reports run as when it exists (sql/balance/0004_reporter_role.sql). */
export const REPORTER_ROLE = 'withdraw_reporter';
/** Every report statement is cancelled after this long unless the caller bounds it otherwise. */
export const REPORT_STATEMENT_TIMEOUT_MS_DEFAULT = 30_000;
const REPORT_STATEMENT_TIMEOUT_MS_MAX = 600_000;
/** A report is for reading: more rows than this is a mistake in the report or its range. */
export const REPORT_ROWS_MAX = 100_000;

export type ReportCell = string | null;
export type ReportResult = Readonly<{
  report: string;
  columns: readonly string[];
  rows: ReadonlyArray<readonly ReportCell[]>;
  /** per database it ran on: the role it ran as (null: the login user, the role being unavailable) */
  ranAs: ReadonlyArray<Readonly<{ database: ReportDatabase; role: string | null }>>;
}>;

/** Raw parameter text as given on the command line; absent means not given. */
export type ReportParamsInput = Partial<Record<ReportParamName, string>>;
/** Values to bind, by parameter: null binds SQL NULL (an optional parameter left out). */
export type ReportValues = Partial<Record<ReportParamName, string | null>>;

export type ReportOptions = Readonly<{ statementTimeoutMs?: number }>;

export function listReports(): Array<
  Readonly<{ name: string; database: ReportDefinition['database']; description: string; parameters: ReportDefinition['parameters'] }>
> {
  return reportNames().map((name) => {
    const { database, description, parameters } = loadReport(name);
    return { name, database, description, parameters };
  });
}

// An instant: ISO 8601 with Z or an offset, or a date alone (midnight UTC: reports run in UTC).
const IsoInstant = z.string().datetime({ offset: true });
const IsoDate = z.string().date();
const Instant = z.string().refine((text) => IsoInstant.safeParse(text).success || IsoDate.safeParse(text).success, {
  message: 'must be an ISO 8601 date (2024-03-01) or instant with a zone (2024-03-01T10:00:00Z)',
});
const PARAM_SCHEMAS: Record<ReportParamName, z.ZodType<string>> = {
  from: Instant,
  to: Instant,
  currency: z.enum(CURRENCIES, {
    errorMap: () => ({ message: `must be one of ${CURRENCIES.join(', ')}` }),
  }),
  account: z.string().uuid({ message: 'must be an account id (a UUID)' }),
};

/** Checks the request against what the report declares; every problem is named in one message. */
export function validateReportParams(report: ReportDefinition, input: ReportParamsInput): ReportValues {
  const problems: string[] = [];
  const values: ReportValues = {};
  const declared = new Map(report.parameters.map((p) => [p.name, p]));
  for (const [name, text] of Object.entries(input) as Array<[ReportParamName, string | undefined]>) {
    if (text !== undefined && !declared.has(name)) {
      const takes = report.parameters.map((p) => `--${p.name}`).join(', ') || 'no parameters';
      problems.push(`--${name} is not a parameter of ${report.name} (it takes ${takes})`);
    }
  }
  for (const parameter of report.parameters) {
    const text = input[parameter.name];
    if (text === undefined) {
      if (parameter.required) problems.push(`--${parameter.name} is required`);
      values[parameter.name] = null;
      continue;
    }
    const parsed = PARAM_SCHEMAS[parameter.name].safeParse(text);
    if (parsed.success) values[parameter.name] = parsed.data;
    else problems.push(`--${parameter.name} ${JSON.stringify(text)} ${parsed.error.issues[0]?.message ?? 'is invalid'}`);
  }
  if (values.from && values.to && Date.parse(values.from) >= Date.parse(values.to)) {
    problems.push(`--from ${values.from} must be before --to ${values.to}`);
  }
  if (problems.length > 0) throw new ReportInputError(`${report.name}: ${problems.join('; ')}`);
  return values;
}

/** `npm run report -- <name> ...`: find the report, validate the parameters, run it. */
export async function runReport(
  name: string,
  input: ReportParamsInput,
  databases: Databases,
  options: ReportOptions = {},
): Promise<ReportResult> {
  const report = loadReport(name);
  return executeReport(report, validateReportParams(report, input), databases, options);
}

/** Runs a report with the values as given (validation is the caller's): the values are bound, never spliced. */
export async function executeReport(
  report: ReportDefinition,
  values: ReportValues,
  databases: Databases,
  options: ReportOptions = {},
): Promise<ReportResult> {
  const targets: ReportDatabase[] = report.database === 'both' ? ['balance', 'ledger'] : [report.database];
  const query = boundQuery(report, values);
  const timeoutMs = statementTimeoutMs(options);
  const ranAs: Array<{ database: ReportDatabase; role: string | null }> = [];
  let columns: string[] | null = null;
  const rows: ReportCell[][] = [];
  for (const database of targets) {
    const part = await inReportTransaction(databases[database], timeoutMs, (connection) => fetchTable(report, connection, query));
    ranAs.push({ database, role: part.role });
    const partColumns = report.database === 'both' ? ['database', ...part.result.columns] : part.result.columns;
    if (columns && columns.join('\u0000') !== partColumns.join('\u0000')) {
      throw new Error(`report ${report.name}: the columns differ between databases`);
    }
    columns = partColumns;
    for (const row of part.result.rows) rows.push(report.database === 'both' ? [database, ...row] : row);
  }
  return { report: report.name, columns: columns ?? [], rows, ranAs };
}

/** EXPLAIN (ANALYZE, BUFFERS) of a report as the runner would run it: one plan per database. */
export async function explainReport(
  report: ReportDefinition,
  values: ReportValues,
  databases: Databases,
  options: ReportOptions = {},
): Promise<Array<{ database: ReportDatabase; plan: string }>> {
  const targets: ReportDatabase[] = report.database === 'both' ? ['balance', 'ledger'] : [report.database];
  const query = boundQuery(report, values, 'explain (analyze, buffers) ');
  const plans: Array<{ database: ReportDatabase; plan: string }> = [];
  for (const database of targets) {
    const { result } = await inReportTransaction(databases[database], statementTimeoutMs(options), async (connection) => {
      const { rows } = await connection.query(query);
      return rows.map((row) => String(Object.values(row)[0])).join('\n');
    });
    plans.push({ database, plan: result });
  }
  return plans;
}

/**
 * The statement with each `:name` replaced by a bound value cast to the parameter's type. slonik
 * binds what a tagged template interpolates, so the template is built from the file's pieces.
 */
function boundQuery(report: ReportDefinition, values: ReportValues, prefix = ''): QuerySqlToken {
  const strings: string[] = [];
  let current = prefix + report.pieces[0];
  report.placeholders.forEach((name, index) => {
    strings.push(`${current}(`);
    current = `::${REPORT_PARAMETER_TYPES[name]})${report.pieces[index + 1]}`;
  });
  strings.push(current);
  const bound = report.placeholders.map((name) => {
    const value = values[name];
    if (value === undefined) throw new ReportInputError(`${report.name}: no value for :${name}`);
    return value;
  });
  const template = Object.freeze(Object.assign([...strings], { raw: Object.freeze([...strings]) }));
  return sql.unsafe(template as unknown as TemplateStringsArray, ...bound);
}

function statementTimeoutMs(options: ReportOptions): number {
  const value = options.statementTimeoutMs ?? REPORT_STATEMENT_TIMEOUT_MS_DEFAULT;
  if (!Number.isInteger(value) || value < 1 || value > REPORT_STATEMENT_TIMEOUT_MS_MAX) {
    throw new RangeError(`statementTimeoutMs must be an integer in 1..${REPORT_STATEMENT_TIMEOUT_MS_MAX}`);
  }
  return value;
}

const RoleRow = z.object({ usable: z.boolean() });

/**
 * One report, one snapshot: REPEATABLE READ READ ONLY, a bounded statement_timeout, UTC, and the
 * reporter role when the session may take it (SET ROLE is judged by the session user, which
 * matters when the pool already runs as another role). Everything LOCAL ends with the transaction.
 */
async function inReportTransaction<T>(
  pool: Databases['balance'],
  timeoutMs: number,
  run: (connection: DatabasePoolConnection) => Promise<T>,
): Promise<{ result: T; role: string | null }> {
  return pool.connect(async (connection) => {
    await connection.query(sql.unsafe`begin isolation level repeatable read read only`);
    try {
      await connection.query(sql.unsafe`
        select set_config('statement_timeout', ${String(timeoutMs)}, true), set_config('TimeZone', 'UTC', true)`);
      const usable = await connection.oneFirst(sql.type(RoleRow)`
        select case when not exists (select 1 from pg_roles where rolname = ${REPORTER_ROLE}) then false
                    when current_setting('server_version_num')::int >= 160000
                      then pg_has_role(session_user, ${REPORTER_ROLE}::name, 'SET')
                    else pg_has_role(session_user, ${REPORTER_ROLE}::name, 'MEMBER') end as usable`);
      if (usable) await connection.query(sql.unsafe`set local role withdraw_reporter`);
      const result = await run(connection);
      await connection.query(sql.unsafe`commit`);
      return { result, role: usable ? REPORTER_ROLE : null };
    } catch (error) {
      await connection.query(sql.unsafe`rollback`).catch(() => {});
      throw error;
    }
  });
}

async function fetchTable(report: ReportDefinition, connection: DatabasePoolConnection, query: QuerySqlToken) {
  const { rows, fields } = await connection.query(query);
  const columns = fields.map((field) => field.name);
  if (new Set(columns).size !== columns.length) throw new Error(`report ${report.name}: two columns share a name`);
  if (rows.length > REPORT_ROWS_MAX) throw new Error(`report ${report.name}: more than ${REPORT_ROWS_MAX} rows; narrow the range`);
  const types = fields.map((field) => field.dataTypeId);
  return {
    columns,
    rows: rows.map((row) => columns.map((column, index) => cellText(row[column], types[index]!))),
  };
}

const TIMESTAMPTZ_OID = 1184;
const TIMESTAMP_OID = 1114;

/** A value as the text a reader sees. Reports format money and instants in SQL; this is the fallback. */
function cellText(value: unknown, dataTypeId: number): ReportCell {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return value;
  if (typeof value === 'bigint' || typeof value === 'boolean') return value.toString();
  if (typeof value === 'number') {
    // the pools parse timestamps to epoch milliseconds
    if ((dataTypeId === TIMESTAMPTZ_OID || dataTypeId === TIMESTAMP_OID) && Number.isFinite(value)) return new Date(value).toISOString();
    return String(value);
  }
  if (value instanceof Date) return value.toISOString();
  return JSON.stringify(value, (_key, inner: unknown) => (typeof inner === 'bigint' ? inner.toString() : inner));
}

const NUMBER_TEXT = /^-?\d+(\.\d+)?$/;

/** An aligned text table: numbers right-aligned, empty cells blank, and the row count. */
export function formatTable(result: Pick<ReportResult, 'columns' | 'rows'>): string {
  const cells = result.rows.map((row) => row.map((cell) => cell ?? ''));
  const widths = result.columns.map((column, c) => Math.max(column.length, ...cells.map((row) => (row[c] ?? '').length)));
  const numeric = result.columns.map(
    (_column, c) => cells.some((row) => row[c] !== '') && cells.every((row) => row[c] === '' || NUMBER_TEXT.test(row[c] ?? '')),
  );
  const line = (values: readonly string[]) =>
    values
      .map((value, c) => (numeric[c] ? value.padStart(widths[c]!) : value.padEnd(widths[c]!)))
      .join('  ')
      .trimEnd();
  const count = `(${cells.length} ${cells.length === 1 ? 'row' : 'rows'})`;
  return [line(result.columns), line(widths.map((width) => '-'.repeat(width))), ...cells.map(line), count, ''].join('\n');
}

/** RFC 4180: a header row, CRLF line ends, fields with a comma, quote, CR or LF quoted and quotes doubled. */
export function formatCsv(result: Pick<ReportResult, 'columns' | 'rows'>): string {
  const field = (value: ReportCell) => {
    const text = value ?? '';
    return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  };
  return [...[result.columns, ...result.rows].map((row) => row.map(field).join(',')), ''].join('\r\n');
}
