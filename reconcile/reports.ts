// Finance reports: run a file of sql/reports/ with bound parameters in a read-only snapshot,
// streamed through a server-side cursor (no row cap, bounded memory), and rendered as an aligned
// table or RFC 4180 CSV (reportFormat.ts). `npm run report` (reportMain.ts) is the command line
// around this; the bench and the tests call it directly.
import { sql, type DatabasePoolConnection, type QuerySqlToken } from 'slonik';
import { z } from 'zod';
import type { Databases } from '../app/db/pools.ts';
import { CURRENCIES } from '../app/money/money.ts';
import {
  JOIN_KEY,
  loadJoin,
  loadReport,
  REPORT_PARAMETER_TYPES,
  ReportInputError,
  reportNames,
  type ReportCliParamName,
  type ReportDatabase,
  type ReportDefinition,
  type ReportParamName,
} from './reportDefinitions.ts';
import type { ReportCell } from './reportFormat.ts';

export { loadReport, loadReportFile, ReportDefinitionError, ReportInputError, REPORTS_DIR } from './reportDefinitions.ts';
export type { ReportDefinition, ReportParamName } from './reportDefinitions.ts';
export { csvField, csvRecord, formatCsv, formatTable, type ReportCell } from './reportFormat.ts';

/** The read-only role reports run as when it exists (sql/balance/0004_reporter_role.sql). */
export const REPORTER_ROLE = 'withdraw_reporter';
/** Every report statement is cancelled after this long unless the caller bounds it otherwise. */
export const REPORT_STATEMENT_TIMEOUT_MS_DEFAULT = 30_000;
export const REPORT_STATEMENT_TIMEOUT_MS_MAX = 3_600_000;
/** Rows fetched from the cursor at a time: what a report holds in memory while it streams. */
export const REPORT_FETCH_ROWS = 2_000;
/** Days and date-only bounds are read in this zone unless --tz says otherwise. */
export const REPORT_TIME_ZONE_DEFAULT = 'UTC';

export type ReportResult = Readonly<{
  report: string;
  columns: readonly string[];
  rows: ReadonlyArray<readonly ReportCell[]>;
  /** per database it ran on: the role it ran as (null: the login user, the role being unavailable) */
  ranAs: ReadonlyArray<Readonly<{ database: ReportDatabase; role: string | null }>>;
}>;

/** Where a streamed report goes: the header once, then batches of rows (awaited: backpressure). */
export type ReportSink = Readonly<{
  columns: (columns: readonly string[]) => void | Promise<void>;
  rows: (rows: ReadonlyArray<readonly ReportCell[]>) => void | Promise<void>;
}>;
export type ReportStreamed = Readonly<{ report: string; rowCount: number; ranAs: ReportResult['ranAs'] }>;

/** Raw parameter text as given on the command line; absent means not given. */
export type ReportParamsInput = Partial<Record<ReportCliParamName, string>>;
/** Values to bind, by parameter: null binds SQL NULL (an optional parameter left out). */
export type ReportValues = Partial<Record<ReportParamName, string | null>>;

export type ReportOptions = Readonly<{
  statementTimeoutMs?: number;
  /** an IANA zone: days are counted and date-only --from/--to read in it (default UTC) */
  timeZone?: string;
  fetchRows?: number;
}>;

export function listReports(): Array<
  Readonly<{ name: string; database: ReportDefinition['database']; description: string; parameters: ReportDefinition['parameters'] }>
> {
  return reportNames().map((name) => {
    const { database, description, parameters } = loadReport(name);
    return { name, database, description, parameters };
  });
}

// An instant: ISO 8601 with Z or an offset, or a date alone (midnight in the report's zone, --tz).
const IsoInstant = z.string().datetime({ offset: true });
const IsoDate = z.string().date();
const Instant = z.string().refine((text) => IsoInstant.safeParse(text).success || IsoDate.safeParse(text).success, {
  message: 'must be an ISO 8601 date (2024-03-01) or instant with a zone (2024-03-01T10:00:00Z)',
});
const PARAM_SCHEMAS: Record<ReportCliParamName, z.ZodType<string>> = {
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
  for (const [name, text] of Object.entries(input) as Array<[ReportCliParamName, string | undefined]>) {
    if (text !== undefined && !declared.has(name)) {
      const takes = report.parameters.map((p) => `--${p.name}`).join(', ') || 'no parameters';
      problems.push(`--${name} is not a parameter of ${report.name} (it takes ${takes})`);
    }
  }
  for (const parameter of report.parameters) {
    const text = parameter.name === 'transactions' ? undefined : input[parameter.name];
    if (text === undefined) {
      if (parameter.required) problems.push(`--${parameter.name} is required`);
      values[parameter.name] = null;
      continue;
    }
    const parsed = PARAM_SCHEMAS[parameter.name as ReportCliParamName].safeParse(text);
    if (parsed.success) values[parameter.name] = parsed.data;
    else problems.push(`--${parameter.name} ${JSON.stringify(text)} ${parsed.error.issues[0]?.message ?? 'is invalid'}`);
  }
  if (values.from && values.to && Date.parse(values.from) >= Date.parse(values.to)) {
    problems.push(`--from ${values.from} must be before --to ${values.to}`);
  }
  if (problems.length > 0) throw new ReportInputError(`${report.name}: ${problems.join('; ')}`);
  return values;
}

/** The databases a report reads: its own (both for `both`) and its join's. */
export function reportDatabases(report: ReportDefinition): ReportDatabase[] {
  const own: ReportDatabase[] = report.database === 'both' ? ['balance', 'ledger'] : [report.database];
  const joined = report.join === null ? [] : [loadJoin(report.join).database as ReportDatabase];
  return [...new Set([...own, ...joined])];
}

/** An IANA zone name (Asia/Tokyo, America/New_York, UTC), as Intl knows it; offsets and POSIX strings are refused. */
export function validateTimeZone(zone: string): string {
  const fail = () => {
    throw new ReportInputError(`--tz ${JSON.stringify(zone)} must be an IANA time zone such as UTC, Europe/Paris or Asia/Tokyo`);
  };
  if (!/^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+){0,2}$/.test(zone) || /^(GMT|UTC)?[+-]/i.test(zone)) fail();
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
  } catch {
    fail();
  }
  return zone;
}

/** `45000`, `45000ms`, `45s`, `10min` → milliseconds, within 1 ms .. REPORT_STATEMENT_TIMEOUT_MS_MAX. */
export function parseDuration(text: string | undefined): number {
  if (text === undefined) return REPORT_STATEMENT_TIMEOUT_MS_DEFAULT;
  const match = /^(\d{1,9})(ms|s|min)?$/.exec(text.trim());
  const unit = { ms: 1, s: 1_000, min: 60_000 }[(match?.[2] ?? 'ms') as 'ms' | 's' | 'min'];
  const ms = match ? Number(match[1]) * unit : Number.NaN;
  if (!Number.isInteger(ms) || ms < 1 || ms > REPORT_STATEMENT_TIMEOUT_MS_MAX) {
    throw new ReportInputError(
      `--statement-timeout ${JSON.stringify(text)} must be a duration such as 45000, 45s or 10min, at most ${REPORT_STATEMENT_TIMEOUT_MS_MAX / 60_000}min`,
    );
  }
  return ms;
}

/** `npm run report -- <name> ...`: find the report, validate the parameters, run it, rows in memory (tests, bench). */
export async function runReport(
  name: string,
  input: ReportParamsInput,
  databases: Databases,
  options: ReportOptions = {},
): Promise<ReportResult> {
  const report = loadReport(name);
  return executeReport(report, validateReportParams(report, input), databases, options);
}

/** Runs a report and keeps its rows (validation is the caller's). For output use streamReport. */
export async function executeReport(
  report: ReportDefinition,
  values: ReportValues,
  databases: Databases,
  options: ReportOptions = {},
): Promise<ReportResult> {
  let columns: readonly string[] = [];
  const rows: Array<readonly ReportCell[]> = [];
  const streamed = await streamReport(report, values, databases, options, {
    columns: (names) => {
      columns = names;
    },
    rows: (batch) => {
      for (const row of batch) rows.push(row);
    },
  });
  return { report: report.name, columns, rows, ranAs: streamed.ranAs };
}

/**
 * Runs a report and hands its rows to `sink` as they come, REPORT_FETCH_ROWS at a time: a cursor
 * in a read-only snapshot per database, so an export of millions of rows holds one batch in memory.
 * The values are bound, never spliced. A report on `both` databases streams one after the other
 * with a `database` column first; a report with a join merges each batch with its join's rows.
 */
export async function streamReport(
  report: ReportDefinition,
  values: ReportValues,
  databases: Databases,
  options: ReportOptions,
  sink: ReportSink,
): Promise<ReportStreamed> {
  const settings = transactionSettings(options);
  const targets: ReportDatabase[] = report.database === 'both' ? ['balance', 'ledger'] : [report.database];
  const ranAs: Array<{ database: ReportDatabase; role: string | null }> = [];
  let header: string | null = null;
  let rowCount = 0;
  const fetchRows = options.fetchRows ?? REPORT_FETCH_ROWS;
  for (const database of targets) {
    const tag = report.database === 'both' ? [database] : [];
    const part = await inReportTransaction(databases[database], settings, async (connection) => {
      const join = report.join === null ? null : await openJoin(report, database, databases, settings);
      try {
        await streamCursor(report, connection, boundQuery(report, values, CURSOR_PREFIX), fetchRows, async (columns, batch, first) => {
          const allColumns = [...(tag.length > 0 ? ['database'] : []), ...columns, ...(join?.columns ?? [])];
          if (first) {
            if (new Set(allColumns).size !== allColumns.length) throw new Error(`report ${report.name}: two columns share a name`);
            if (header === null) await sink.columns(allColumns);
            else if (header !== allColumns.join('\u0000')) throw new Error(`report ${report.name}: the columns differ between databases`);
            header = allColumns.join('\u0000');
          }
          if (batch.length === 0) return;
          const joined = join ? await join.rowsFor(columns, batch) : batch;
          rowCount += joined.length;
          await sink.rows(tag.length > 0 ? joined.map((row) => [...tag, ...row]) : joined);
        });
      } finally {
        await join?.close();
      }
      return join?.ranAs() ?? null;
    });
    ranAs.push({ database, role: part.role });
    if (part.result) ranAs.push(part.result);
  }
  return { report: report.name, rowCount, ranAs };
}

type JoinHandle = Readonly<{
  columns: readonly string[];
  rowsFor: (columns: readonly string[], rows: ReadonlyArray<readonly ReportCell[]>) => Promise<ReadonlyArray<readonly ReportCell[]>>;
  close: () => Promise<void>;
  ranAs: () => Readonly<{ database: ReportDatabase; role: string | null }>;
}>;

const CURSOR_PREFIX = 'declare report_rows no scroll cursor for ';

/**
 * The join's own read-only snapshot on the other database, held open while the report streams:
 * one connection, one `select` per batch of the report's transaction ids.
 */
async function openJoin(
  report: ReportDefinition,
  mainDatabase: ReportDatabase,
  databases: Databases,
  settings: TransactionSettings,
): Promise<JoinHandle> {
  const join = loadJoin(report.join!);
  const database = join.database as ReportDatabase;
  if (database === mainDatabase) throw new Error(`report ${report.name}: its join must run on the other database`);
  let release: () => void = () => {};
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  let ready: (handle: JoinHandle) => void = () => {};
  let failed: (error: unknown) => void = () => {};
  const handle = new Promise<JoinHandle>((resolve, reject) => {
    ready = resolve;
    failed = reject;
  });
  let role: string | null = null;
  const done = inReportTransaction(databases[database], settings, async (connection, usedRole) => {
    role = usedRole;
    const probe = await connection.query(boundQuery(join, { transactions: '{}' }));
    const joinColumns = probe.fields.map((field) => field.name);
    if (joinColumns[0] !== JOIN_KEY) throw new Error(`join ${join.name}: its first column must be ${JOIN_KEY}`);
    ready({
      columns: joinColumns.slice(1),
      ranAs: () => ({ database, role }),
      rowsFor: async (columns, rows) => {
        const key = columns.indexOf(JOIN_KEY);
        if (key < 0) throw new Error(`report ${report.name}: has no ${JOIN_KEY} column to join on`);
        const ids = [...new Set(rows.map((row) => row[key]).filter((id): id is string => id !== null))];
        const { rows: found, fields } = await connection.query(boundQuery(join, { transactions: `{${ids.join(',')}}` }));
        const types = fields.map((field) => field.dataTypeId);
        const names = fields.map((field) => field.name);
        const byId = new Map<string, ReportCell[]>();
        for (const row of found) {
          const cells = names.map((name, index) => cellText(row[name], types[index]!));
          if (byId.has(cells[0]!)) throw new Error(`join ${join.name}: two rows for ${JOIN_KEY} ${cells[0]}`);
          byId.set(cells[0]!, cells.slice(1));
        }
        const empty = names.slice(1).map(() => null);
        return rows.map((row) => [...row, ...(byId.get(row[key] ?? '') ?? empty)]);
      },
      close: async () => {
        release();
        await done.catch(() => {});
      },
    });
    await released;
  });
  done.catch((error: unknown) => failed(error));
  return handle;
}

/** Declares a cursor for the statement and fetches it batch by batch until it is exhausted. */
async function streamCursor(
  report: ReportDefinition,
  connection: DatabasePoolConnection,
  query: QuerySqlToken,
  fetchRows: number,
  onBatch: (columns: readonly string[], rows: ReadonlyArray<readonly ReportCell[]>, first: boolean) => Promise<void>,
): Promise<void> {
  await connection.query(query);
  const fetch = rawQuery(`fetch forward ${fetchRows} from report_rows`);
  for (let first = true; ; first = false) {
    const { rows, fields } = await connection.query(fetch);
    const columns = fields.map((field) => field.name);
    const types = fields.map((field) => field.dataTypeId);
    if (first && new Set(columns).size !== columns.length) throw new Error(`report ${report.name}: two columns share a name`);
    await onBatch(
      columns,
      rows.map((row) => columns.map((column, index) => cellText(row[column], types[index]!))),
      first,
    );
    if (rows.length < fetchRows) break;
  }
  await connection.query(sql.unsafe`close report_rows`);
}

/** A fixed statement (no values) from text the runner composed itself. */
function rawQuery(text: string): QuerySqlToken {
  return sql.unsafe(Object.freeze(Object.assign([text], { raw: Object.freeze([text]) })) as unknown as TemplateStringsArray);
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
    const { result } = await inReportTransaction(databases[database], transactionSettings(options), async (connection) => {
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

type TransactionSettings = Readonly<{ timeoutMs: number; timeZone: string }>;

function transactionSettings(options: ReportOptions): TransactionSettings {
  const value = options.statementTimeoutMs ?? REPORT_STATEMENT_TIMEOUT_MS_DEFAULT;
  if (!Number.isInteger(value) || value < 1 || value > REPORT_STATEMENT_TIMEOUT_MS_MAX) {
    throw new RangeError(`statementTimeoutMs must be an integer in 1..${REPORT_STATEMENT_TIMEOUT_MS_MAX}`);
  }
  return { timeoutMs: value, timeZone: validateTimeZone(options.timeZone ?? REPORT_TIME_ZONE_DEFAULT) };
}

const RoleRow = z.object({ usable: z.boolean() });

/**
 * One report, one snapshot: REPEATABLE READ READ ONLY, a bounded statement_timeout, the report's
 * zone, a cursor planned for reading every row (cursor_tuple_fraction 1: the planner's default
 * of 10% favours plans that start fast and finish slowly), and the reporter role when the session may take it (SET ROLE is judged by the session user,
 * which matters when the pool already runs as another role). Everything LOCAL ends with the transaction.
 */
async function inReportTransaction<T>(
  pool: Databases['balance'],
  settings: TransactionSettings,
  run: (connection: DatabasePoolConnection, role: string | null) => Promise<T>,
): Promise<{ result: T; role: string | null }> {
  return pool.connect(async (connection) => {
    await connection.query(sql.unsafe`begin isolation level repeatable read read only`);
    try {
      await connection.query(sql.unsafe`
        select set_config('statement_timeout', ${String(settings.timeoutMs)}, true), set_config('TimeZone', ${settings.timeZone}, true),
               set_config('cursor_tuple_fraction', '1', true)`);
      const usable = await connection.oneFirst(sql.type(RoleRow)`
        select case when not exists (select 1 from pg_roles where rolname = ${REPORTER_ROLE}) then false
                    when current_setting('server_version_num')::int >= 160000
                      then pg_has_role(session_user, ${REPORTER_ROLE}::name, 'SET')
                    else pg_has_role(session_user, ${REPORTER_ROLE}::name, 'MEMBER') end as usable`);
      if (usable) await connection.query(sql.unsafe`set local role withdraw_reporter`);
      const result = await run(connection, usable ? REPORTER_ROLE : null);
      await connection.query(sql.unsafe`commit`);
      return { result, role: usable ? REPORTER_ROLE : null };
    } catch (error) {
      await connection.query(sql.unsafe`rollback`).catch(() => {});
      throw error;
    }
  });
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
