// Finance report files (sql/reports/<name>.sql): the header that declares them, the named
// parameters they take, and their SQL split around those parameters so that every value is bound.
//
// A report file starts with comment lines:
//   -- database: balance | ledger | both
//   -- description: one line
//   -- params: none | from (optional), to (optional), currency (required), ...
//   -- join: <name> on transaction_id      (optional: see below)
// and holds ONE statement. Parameters are written `:from`, `:to`, `:currency`, `:account`; casts
// (`::text`), strings, quoted identifiers, comments and dollar quotes are left alone.
//
// A report that spans both databases (payouts: orders in the Balance DB, journals in the Ledger DB)
// names a join: sql/reports/joins/<name>.sql runs on the other database with `:transactions` (the
// transaction ids of one batch of the report's rows, a uuid[]) and returns at most one row per
// transaction id, its first column `transaction_id`; the runner appends its other columns to each
// row of the report (empty when the join has no row for it). The two are merged in TypeScript batch
// by batch while the report streams, each database in its own read-only snapshot.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { sqlDir } from '../app/paths.ts';

export const REPORTS_DIR = sqlDir('reports');

/** The parameters a report may take, with the SQL type each bound value is cast to. */
export const REPORT_PARAMETER_TYPES = {
  from: 'timestamptz',
  to: 'timestamptz',
  currency: 'text',
  account: 'uuid',
  /** a join's input (the runner binds it), never a command-line option */
  transactions: 'uuid[]',
} as const;
export type ReportParamName = keyof typeof REPORT_PARAMETER_TYPES;
export type ReportCliParamName = Exclude<ReportParamName, 'transactions'>;
/** the parameters a person may give on the command line */
export const REPORT_PARAM_NAMES: readonly ReportCliParamName[] = ['from', 'to', 'currency', 'account'];
export const JOINS_DIR = path.join(sqlDir('reports'), 'joins');
/** the key a join matches on: the first column of the join and a column of the report */
export const JOIN_KEY = 'transaction_id';

export type ReportDatabase = 'balance' | 'ledger';
export type ReportParameter = Readonly<{ name: ReportParamName; required: boolean }>;

export type ReportDefinition = Readonly<{
  name: string;
  file: string;
  /** where it runs; `both` runs it on each database and tags the rows with a `database` column */
  database: ReportDatabase | 'both';
  description: string;
  parameters: readonly ReportParameter[];
  /** the statement's text around its parameters: pieces.length === placeholders.length + 1 */
  pieces: readonly string[];
  placeholders: readonly ReportParamName[];
  /** the join file (sql/reports/joins/<name>.sql) whose columns are appended, by transaction_id */
  join: string | null;
}>;

/** The caller asked for something that cannot be (unknown report, missing or bad parameter): exit code 2. */
export class ReportInputError extends Error {
  override readonly name = 'ReportInputError';
}

/** A report file that breaks the rules above: a defect of the file, not of the request. */
export class ReportDefinitionError extends Error {
  override readonly name = 'ReportDefinitionError';
}

const REPORT_NAME = /^[a-z0-9][a-z0-9-]{0,63}$/;
/** A report file is read whole; anything this large is not a report. */
const REPORT_FILE_BYTES_MAX = 64 * 1024;

export function isReportParamName(value: string): value is ReportParamName {
  return Object.hasOwn(REPORT_PARAMETER_TYPES, value);
}

/** The report names in `directory`, sorted. */
export function reportNames(directory: string = REPORTS_DIR): string[] {
  return readdirSync(directory)
    .filter((file) => file.endsWith('.sql'))
    .map((file) => file.slice(0, -'.sql'.length))
    .filter((name) => REPORT_NAME.test(name))
    .sort();
}

export function loadReport(name: string, directory: string = REPORTS_DIR): ReportDefinition {
  const known = reportNames(directory);
  // the name is checked against the listing, so it can never walk out of the directory
  if (!REPORT_NAME.test(name) || !known.includes(name)) {
    throw new ReportInputError(`unknown report ${JSON.stringify(name)}; the reports are: ${known.join(', ')}`);
  }
  const report = loadReportFile(path.join(directory, `${name}.sql`));
  if (report.placeholders.includes('transactions')) {
    throw new ReportDefinitionError(`report ${name}: only a join (sql/reports/joins/) takes :transactions`);
  }
  return report;
}

export function loadReportFile(file: string): ReportDefinition {
  const text = readFileSync(file, 'utf8');
  const name = path.basename(file, '.sql');
  if (Buffer.byteLength(text) > REPORT_FILE_BYTES_MAX) {
    throw new ReportDefinitionError(`report ${name}: the file is larger than ${REPORT_FILE_BYTES_MAX} bytes`);
  }
  return parseReport(name, file, text);
}

export function parseReport(name: string, file: string, text: string): ReportDefinition {
  const header = parseHeader(name, text);
  const { pieces, placeholders } = splitParameters(name, text);
  const declared = new Set(header.parameters.map((p) => p.name));
  for (const used of new Set(placeholders)) {
    if (!declared.has(used)) throw new ReportDefinitionError(`report ${name}: uses :${used} but its header does not declare it`);
  }
  for (const parameter of header.parameters) {
    if (!placeholders.includes(parameter.name)) {
      throw new ReportDefinitionError(`report ${name}: declares ${parameter.name} but never uses :${parameter.name}`);
    }
  }
  if (header.join !== null && !/^[a-z0-9][a-z0-9-]{0,63}$/.test(header.join)) {
    throw new ReportDefinitionError(`report ${name}: bad join ${JSON.stringify(header.join)}`);
  }
  return { name, file, ...header, pieces, placeholders };
}

/** A join file of sql/reports/joins/ (see the top of this file). */
export function loadJoin(name: string, directory: string = JOINS_DIR): ReportDefinition {
  const join = loadReportFile(path.join(directory, `${name}.sql`));
  if (join.database === 'both' || join.join !== null || join.parameters.some((p) => p.name !== 'transactions')) {
    throw new ReportDefinitionError(`join ${name}: one database, no join of its own, and only :transactions`);
  }
  return join;
}

type Header = Pick<ReportDefinition, 'database' | 'description' | 'parameters' | 'join'>;

function parseHeader(name: string, text: string): Header {
  const fields = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    if (!line.startsWith('--')) break;
    const match = /^--\s*(database|description|params|join):\s*(.*?)\s*$/.exec(line);
    if (match) fields.set(match[1]!, match[2]!);
  }
  const database = fields.get('database');
  if (database !== 'balance' && database !== 'ledger' && database !== 'both') {
    throw new ReportDefinitionError(`report ${name}: the header needs "-- database: balance", "ledger" or "both"`);
  }
  const description = fields.get('description');
  if (!description) throw new ReportDefinitionError(`report ${name}: the header needs "-- description: ..."`);
  const params = fields.get('params');
  if (params === undefined) throw new ReportDefinitionError(`report ${name}: the header needs "-- params: ..." (or "none")`);
  const joinText = fields.get('join');
  let join: string | null = null;
  if (joinText !== undefined) {
    const match = new RegExp(`^(\\S+) on ${JOIN_KEY}$`).exec(joinText);
    if (!match) throw new ReportDefinitionError(`report ${name}: write the join as "-- join: <name> on ${JOIN_KEY}"`);
    join = match[1]!;
  }
  return { database, description, parameters: parseParamList(name, params), join };
}

function parseParamList(name: string, list: string): ReportParameter[] {
  if (list === 'none') return [];
  const parameters: ReportParameter[] = [];
  for (const item of list.split(',')) {
    const match = /^\s*([a-z]+)\s*\((required|optional)\)\s*$/.exec(item);
    if (!match || !isReportParamName(match[1]!)) {
      throw new ReportDefinitionError(
        `report ${name}: bad parameter ${JSON.stringify(item.trim())}; write "name (required)" or "name (optional)" ` +
          `with a name among ${Object.keys(REPORT_PARAMETER_TYPES).join(', ')}`,
      );
    }
    if (parameters.some((p) => p.name === match[1])) throw new ReportDefinitionError(`report ${name}: ${match[1]} declared twice`);
    parameters.push({ name: match[1] as ReportParamName, required: match[2] === 'required' });
  }
  return parameters;
}

/**
 * Splits the statement around its `:name` parameters. Refuses a second statement (a `;` before the
 * end): with no parameters a driver sends the text as a simple query, where `; commit; insert …`
 * would escape the read-only transaction. Also refuses positional `$1`: values are bound by name.
 */
export function splitParameters(name: string, text: string): { pieces: string[]; placeholders: ReportParamName[] } {
  const pieces: string[] = [];
  const placeholders: ReportParamName[] = [];
  let start = 0;
  let i = 0;
  const fail = (message: string): never => {
    const lineNumber = text.slice(0, i).split('\n').length;
    throw new ReportDefinitionError(`report ${name}, line ${lineNumber}: ${message}`);
  };
  while (i < text.length) {
    const c = text[i]!;
    const next = text[i + 1];
    if (c === '-' && next === '-') {
      i = indexOrEnd(text, '\n', i);
    } else if (c === '/' && next === '*') {
      i = skipBlockComment(text, i, fail);
    } else if (c === "'") {
      const escapes = /[eE]/.test(text[i - 1] ?? '') && !/[A-Za-z0-9_$]/.test(text[i - 2] ?? '');
      i = skipQuoted(text, i, "'", escapes, fail);
    } else if (c === '"') {
      i = skipQuoted(text, i, '"', false, fail);
    } else if (c === '$') {
      const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(text.slice(i));
      if (tag) {
        const close = text.indexOf(tag[0], i + tag[0].length);
        if (close < 0) fail(`unterminated ${tag[0]} quote`);
        i = close + tag[0].length;
      } else if (/[0-9]/.test(next ?? '')) {
        fail('positional parameters ($1) are not allowed: use :from, :to, :currency, :account or :transactions');
      } else {
        i += 1;
      }
    } else if (c === ':' && next === ':') {
      i += 2; // a cast
    } else if (c === ':' && /[A-Za-z_]/.test(next ?? '')) {
      const word = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i + 1))![0];
      if (!isReportParamName(word))
        fail(
          `unknown parameter :${word}; the parameters are ${Object.keys(REPORT_PARAMETER_TYPES)
            .map((p) => `:${p}`)
            .join(', ')}`,
        );
      pieces.push(text.slice(start, i));
      placeholders.push(word as ReportParamName);
      i += 1 + word.length;
      start = i;
    } else if (c === ';') {
      if (!onlyCommentsAndSpace(text.slice(i + 1))) fail('a report holds one statement: nothing may follow a ";"');
      pieces.push(text.slice(start, i));
      return { pieces, placeholders };
    } else {
      i += 1;
    }
  }
  pieces.push(text.slice(start));
  return { pieces, placeholders };
}

function indexOrEnd(text: string, needle: string, from: number): number {
  const found = text.indexOf(needle, from);
  return found < 0 ? text.length : found;
}

function skipBlockComment(text: string, from: number, fail: (message: string) => never): number {
  let depth = 0;
  let i = from;
  while (i < text.length) {
    if (text.startsWith('/*', i)) {
      depth += 1;
      i += 2;
    } else if (text.startsWith('*/', i)) {
      depth -= 1;
      i += 2;
      if (depth === 0) return i;
    } else {
      i += 1;
    }
  }
  return fail('unterminated /* comment');
}

function skipQuoted(text: string, from: number, quote: string, backslashEscapes: boolean, fail: (message: string) => never): number {
  let i = from + 1;
  while (i < text.length) {
    const c = text[i]!;
    if (backslashEscapes && c === '\\') {
      i += 2;
    } else if (c === quote) {
      if (text[i + 1] !== quote) return i + 1;
      i += 2; // a doubled quote
    } else {
      i += 1;
    }
  }
  return fail(`unterminated ${quote} quote`);
}

function onlyCommentsAndSpace(rest: string): boolean {
  return rest.replace(/--[^\n]*/g, '').trim() === '';
}
