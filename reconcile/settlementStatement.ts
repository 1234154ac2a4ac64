// The provider's daily settlement statement: parsing its CSV strictly, and storing it idempotently.
//
// A statement is `reference,amount,currency,status,settledAt,fee`, one line per payout settled
// (paid) or reversed on one UTC day. Importing the same lines again changes nothing; a different
// statement for a day that already has one (a re-issue) is stored as `conflicting` and raises a
// `settlement_statement_reissued` break, and only `replace` makes it the day's current statement.
import { createHash } from 'node:crypto';
import { parse } from 'csv-parse/sync';
import { sql, type DatabasePool, type DatabaseTransactionConnection } from 'slonik';
import { z } from 'zod';
import { type Currency, currencyExponent, isCurrency, parseAmount, parseDecimal } from '../app/money/money.ts';

export const STATEMENT_HEADER = ['reference', 'amount', 'currency', 'status', 'settledAt', 'fee'] as const;
const REFERENCE_LENGTH_MAX = 128;
const INSERT_CHUNK_ROWS = 5_000;
const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$/;
export const STATEMENT_REISSUED = 'settlement_statement_reissued';

export type StatementLine = Readonly<{
  lineNumber: number;
  reference: string;
  amount: string;
  amountMinor: bigint;
  currency: Currency;
  status: 'paid' | 'reversed';
  settledAt: string;
  fee: string;
  feeMinor: bigint;
}>;
export type ParsedStatement = Readonly<{ date: string; lines: readonly StatementLine[]; sha256: string }>;

/** The statement cannot be read as one: nothing of it is stored. */
export class StatementFormatError extends Error {
  override readonly name = 'StatementFormatError';
}

/** The UTC day (YYYY-MM-DD) of an ISO instant with a zone. */
export function utcDay(instant: string): string {
  return new Date(instant).toISOString().slice(0, 10);
}

function parseLine(record: readonly string[], lineNumber: number): StatementLine {
  const fail = (message: string): never => {
    throw new StatementFormatError(`line ${lineNumber}: ${message}`);
  };
  const [reference, amount, currency, status, settledAt, fee] = record as [string, string, string, string, string, string];
  if (reference.length === 0 || reference.length > REFERENCE_LENGTH_MAX) fail(`reference must be 1 to ${REFERENCE_LENGTH_MAX} characters`);
  if (!isCurrency(currency)) return fail(`currency ${JSON.stringify(currency)} is not one of ours`);
  const parsedAmount = parseAmount(amount, currency);
  if (!parsedAmount.ok) return fail(`amount ${JSON.stringify(amount)} is not a positive ${currency} amount (${parsedAmount.reason})`);
  if (status !== 'paid' && status !== 'reversed') return fail(`status ${JSON.stringify(status)} must be paid or reversed`);
  if (!ISO_INSTANT.test(settledAt) || Number.isNaN(Date.parse(settledAt)))
    fail(`settledAt ${JSON.stringify(settledAt)} is not an ISO 8601 instant`);
  const decimal = parseDecimal(fee);
  if (!decimal || decimal.negative || decimal.scale > currencyExponent(currency) || !/^\d+(\.\d+)?$/.test(fee)) {
    return fail(`fee ${JSON.stringify(fee)} is not a ${currency} amount of zero or more`);
  }
  const feeMinor = decimal.digits * 10n ** BigInt(currencyExponent(currency) - decimal.scale);
  return { lineNumber, reference, amount, amountMinor: parsedAmount.minor, currency, status, settledAt, fee, feeMinor };
}

/**
 * Reads a statement strictly: the contract's header, six fields a line, known currencies, exact
 * amounts, every line on one UTC day (`date` when given, otherwise the lines' own). The hash is
 * over the day and the fields, so the same statement with other line ends or quoting is the same.
 */
export function parseStatement(csv: string, date: string | null): ParsedStatement {
  let records: string[][];
  try {
    records = parse(csv.replace(/^\uFEFF/, ''), { skip_empty_lines: true, relax_column_count: false, relax_quotes: false });
  } catch (error) {
    throw new StatementFormatError(`not RFC 4180 CSV: ${(error as Error).message}`);
  }
  const [header, ...rows] = records;
  if (!header || header.join(',') !== STATEMENT_HEADER.join(',')) {
    throw new StatementFormatError(`the header must be ${STATEMENT_HEADER.join(',')}`);
  }
  const lines = rows.map((row, index) => parseLine(row, index + 1));
  const day = date ?? (lines[0] ? utcDay(lines[0].settledAt) : null);
  if (day === null) throw new StatementFormatError('an empty statement says nothing of its day: give --date');
  if (!/^\d{4}-\d{2}-\d{2}$/.test(day) || Number.isNaN(Date.parse(`${day}T00:00:00Z`))) throw new StatementFormatError(`bad date ${day}`);
  for (const line of lines) {
    if (utcDay(line.settledAt) !== day) {
      throw new StatementFormatError(`line ${line.lineNumber}: settled ${line.settledAt}, not on the statement's day ${day} (UTC)`);
    }
  }
  const hash = createHash('sha256').update(day);
  for (const line of lines) {
    hash.update(`\n${[line.reference, line.amount, line.currency, line.status, line.settledAt, line.fee].join('\u0000')}`);
  }
  return { date: day, lines, sha256: hash.digest('hex') };
}

export type StatementSource = Readonly<{ kind: 'provider' | 'file'; name: string; importedBy: string }>;
export type ImportOutcome = Readonly<
  | { kind: 'imported'; statementId: bigint; date: string; lines: number }
  | { kind: 'unchanged'; statementId: bigint; date: string; lines: number }
  | { kind: 'replaced'; statementId: bigint; previousId: bigint; date: string; lines: number }
  | { kind: 'conflicting'; statementId: bigint; currentId: bigint; date: string; lines: number }
>;

const StatementRow = z.object({ id: z.bigint(), state: z.enum(['current', 'superseded', 'conflicting']), lineCount: z.number() });

/**
 * Stores a parsed statement in one transaction, serialized per day. The same content again is
 * `unchanged`; a new day is `imported`; a different content for a day that has a current statement
 * is `conflicting` (kept, a break raised) unless `replace`, which supersedes the current one.
 */
export async function importStatement(
  balance: DatabasePool,
  statement: ParsedStatement,
  source: StatementSource,
  options: Readonly<{ replace: boolean }>,
): Promise<ImportOutcome> {
  const { date } = statement;
  const lines = statement.lines.length;
  return balance.transaction(async (tx) => {
    await tx.query(sql.unsafe`select pg_advisory_xact_lock(hashtextextended(${`settlement-statement:${date}`}, 0))`);
    const current = await tx.maybeOne(sql.type(StatementRow)`
      select id, state, line_count as "lineCount" from settlement_statements where statement_date = ${date}::date and state = 'current'`);
    const same = await tx.maybeOne(sql.type(StatementRow)`
      select id, state, line_count as "lineCount" from settlement_statements
       where statement_date = ${date}::date and content_sha256 = ${statement.sha256}`);
    if (same?.state === 'current') return { kind: 'unchanged', statementId: same.id, date, lines };
    if (current === null) {
      const id = same ? await promote(tx, same.id) : await insertStatement(tx, statement, source, 'current');
      return { kind: 'imported', statementId: id, date, lines };
    }
    if (options.replace) {
      const id = same ? same.id : await insertStatement(tx, statement, source, 'conflicting');
      await tx.query(sql.unsafe`
        update settlement_statements set state = 'superseded', superseded_at = now(), superseded_by = ${id} where id = ${current.id}`);
      await promote(tx, id);
      await tx.query(sql.unsafe`
        update reconciliation_breaks set resolved_at = now(), resolution = ${`${source.importedBy}: replaced statement ${current.id} of ${date} with ${id}`}
         where resolved_at is null and category = ${STATEMENT_REISSUED} and subject = ${`statement:${date}`}`);
      await tx.query(sql.unsafe`
        insert into admin_audit_log (operator, action, subject, details)
        values (${source.importedBy}, 'settlement.replace', ${`statement:${date}`},
                ${sql.jsonb({ previousId: current.id.toString(), statementId: id.toString(), source: source.name })})`);
      return { kind: 'replaced', statementId: id, previousId: current.id, date, lines };
    }
    const id = same ? same.id : await insertStatement(tx, statement, source, 'conflicting');
    await tx.query(sql.unsafe`
      select reconciliation_record_break(${STATEMENT_REISSUED}, ${`statement:${date}`}, null, null, null, null,
        ${`statement ${current.id}: ${current.lineCount} lines`}, ${`re-issue ${id}: ${lines} lines, different content`},
        ${sql.jsonb({ date, currentId: current.id.toString(), reissueId: id.toString(), source: source.name })})`);
    return { kind: 'conflicting', statementId: id, currentId: current.id, date, lines };
  });
}

async function promote(tx: DatabaseTransactionConnection, id: bigint): Promise<bigint> {
  await tx.query(
    sql.unsafe`update settlement_statements set state = 'current', superseded_at = null, superseded_by = null where id = ${id}`,
  );
  return id;
}

async function insertStatement(
  tx: DatabaseTransactionConnection,
  statement: ParsedStatement,
  source: StatementSource,
  state: 'current' | 'conflicting',
): Promise<bigint> {
  const id = await tx.oneFirst(sql.type(z.object({ id: z.bigint() }))`
    insert into settlement_statements (statement_date, source, source_name, content_sha256, line_count, state, imported_by)
    values (${statement.date}::date, ${source.kind}, ${source.name}, ${statement.sha256}, ${statement.lines.length}, ${state}, ${source.importedBy})
    returning id`);
  for (let i = 0; i < statement.lines.length; i += INSERT_CHUNK_ROWS) {
    const chunk = statement.lines.slice(i, i + INSERT_CHUNK_ROWS);
    const column = <K extends keyof StatementLine>(key: K) => chunk.map((line) => String(line[key]));
    await tx.query(sql.unsafe`
      insert into settlement_lines (statement_id, line_number, reference, amount, amount_minor, currency, status, settled_at, fee, fee_minor)
      select ${id}, u.line_number, u.reference, u.amount, u.amount_minor, u.currency, u.status, u.settled_at, u.fee, u.fee_minor
        from unnest(${sql.array(column('lineNumber'), 'int4')}, ${sql.array(column('reference'), 'text')},
                    ${sql.array(column('amount'), 'text')}, ${sql.array(column('amountMinor'), 'int8')},
                    ${sql.array(column('currency'), 'text')}, ${sql.array(column('status'), 'text')},
                    ${sql.array(column('settledAt'), 'timestamptz')}, ${sql.array(column('fee'), 'text')},
                    ${sql.array(column('feeMinor'), 'int8')})
             as u(line_number, reference, amount, amount_minor, currency, status, settled_at, fee, fee_minor)`);
  }
  return id;
}
