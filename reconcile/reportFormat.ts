// How a report's cells are written: an aligned text table for a terminal, or RFC 4180 CSV for a
// spreadsheet, streamed, and safe to open: a text cell that a spreadsheet would run as a formula is
// neutralised, while a number stays a number.

export type ReportCell = string | null;

const NUMBER_TEXT = /^-?\d+(\.\d+)?$/;
/** what spreadsheets read as the start of a formula (or hide before one): = + - @ tab, CR */
const FORMULA_START = /^[=+\-@\t\r]/;

/** An aligned text table: numbers right-aligned, empty cells blank, and the row count. */
export function formatTable(result: Readonly<{ columns: readonly string[]; rows: ReadonlyArray<readonly ReportCell[]> }>): string {
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

/**
 * One CSV field. A decimal number (`-0.05`, `1500`) is written as it is. Any other text that
 * starts with = + - @ tab or CR gets a leading apostrophe, which spreadsheets show as text and
 * never evaluate (`=HYPERLINK(...)` from a provider's statement stays inert). Then RFC 4180: a
 * field with a comma, quote, CR or LF is quoted, quotes doubled. Empty (null) is an empty field.
 */
export function csvField(value: ReportCell): string {
  let text = value ?? '';
  if (FORMULA_START.test(text) && !NUMBER_TEXT.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** One CSV record with its CRLF. */
export function csvRecord(cells: ReadonlyArray<ReportCell>): string {
  return `${cells.map(csvField).join(',')}\r\n`;
}

/** RFC 4180: a header row, CRLF line ends; see csvField for each field. */
export function formatCsv(result: Readonly<{ columns: readonly string[]; rows: ReadonlyArray<readonly ReportCell[]> }>): string {
  return [result.columns, ...result.rows].map(csvRecord).join('');
}
