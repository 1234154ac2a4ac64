// The payouts report: every payout of a period with its settlement line and its ledger journals,
// two databases merged by transaction id while it streams, on the fixed history of
// test/helpers/financeHistory.ts with its statement imported; days in the report's zone.
import test from 'ava';
import { sql } from 'slonik';
import { z } from 'zod';
import { explainReport, formatCsv, loadReport, runReport, streamReport, validateReportParams } from '../reconcile/reports.ts';
import { importStatement, parseStatement } from '../reconcile/settlementStatement.ts';
import { parse as parseCsv } from 'csv-parse/sync';
import { DAY, dayStatement, NEXT_DAY, seedFinanceHistory, type FinanceHistory } from './helpers/financeHistory.ts';
import { createTestDatabases, type TestDatabases } from './helpers/testDatabases.ts';

let db: TestDatabases;
let history: FinanceHistory;
const journalIds = new Map<string, Record<string, string>>();

test.before(async () => {
  db = await createTestDatabases();
  history = await seedFinanceHistory(db.databases);
  const parsed = parseStatement(dayStatement(history), null);
  await importStatement(db.databases.balance, parsed, { kind: 'file', name: 'day.csv', importedBy: 'test' }, { replace: false });
  const rows = await db.databases.ledger.any(sql.type(z.object({ transactionId: z.string(), kind: z.string(), id: z.bigint() }))`
    select transaction_id as "transactionId", kind, id from journal_transactions`);
  for (const row of rows)
    journalIds.set(row.transactionId, { ...(journalIds.get(row.transactionId) ?? {}), [row.kind]: row.id.toString() });
});
test.after.always(async () => {
  await db?.drop();
});

const COLUMNS = [
  'order_id',
  'transaction_id',
  'account_id',
  'currency',
  'amount',
  'fee',
  'status',
  'created_at',
  'created_day',
  'finished_at',
  'provider_reference',
  'settlement_date',
  'settlement_line',
  'settled_at',
  'reversed_on',
  'hold_journal_id',
  'settle_journal_id',
  'reverse_journal_id',
  'ledger_final_at',
];

test('when payouts runs for the day, then every order is itemized with its statement line, fee and ledger journals', async (t) => {
  const result = await runReport('payouts', { from: DAY, to: NEXT_DAY }, db.databases);
  t.deepEqual(result.columns, COLUMNS);
  t.deepEqual(
    result.ranAs.map((r) => r.database),
    ['balance', 'ledger'],
  );
  const o = history.orders;
  const byOrder = new Map(result.rows.map((row) => [row[0], row]));
  t.is(result.rows.length, 10);
  // oldest first: o10 (09:00) ... o9 (23:30)
  t.deepEqual(
    result.rows.map((row) => row[0]),
    ['o10', 'o1', 'o2', 'o3', 'o4', 'o5', 'o6', 'o7', 'o8', 'o9'].map((key) => o[key]!.orderId),
  );
  const j = (key: string) => journalIds.get(o[key]!.transactionId)!;
  const o1 = byOrder.get(o.o1!.orderId)!;
  t.deepEqual(o1.slice(0, 15), [
    o.o1!.orderId,
    o.o1!.transactionId,
    history.accounts.alice,
    'USD',
    '10.00',
    '0.25',
    'success',
    '2024-04-10T10:00:00.000Z',
    '2024-04-10',
    '2024-04-10T10:01:00.000Z',
    o.o1!.transactionId,
    '2024-04-10',
    '1',
    '2024-04-10T10:00:30.000Z',
    null,
  ]);
  t.deepEqual(o1.slice(15, 18), [j('o1').hold!, j('o1').settle!, null]);
  t.regex(o1[18]!, /^\d{4}-\d{2}-\d{2}T/);
  // no line for o2; failed o5 reversed in the ledger; o7 has no settle journal; o8 paid then reversed
  t.deepEqual(byOrder.get(o.o2!.orderId)!.slice(5, 15), [
    null,
    'success',
    '2024-04-10T11:00:00.000Z',
    '2024-04-10',
    '2024-04-10T11:01:00.000Z',
    null,
    null,
    null,
    null,
    null,
  ]);
  t.deepEqual(byOrder.get(o.o5!.orderId)!.slice(15, 18), [j('o5').hold!, null, j('o5').reverse!]);
  t.deepEqual(byOrder.get(o.o7!.orderId)!.slice(15, 18), [j('o7').hold!, null, null]);
  t.deepEqual(byOrder.get(o.o8!.orderId)!.slice(11, 15), ['2024-04-10', '8', '2024-04-10T17:00:30.000Z', '2024-04-10']);
  t.deepEqual(byOrder.get(o.o10!.orderId)!.slice(3, 6), ['EUR', '9.00', '0.10']);
  // what was paid out per currency, by hand: USD 10+20+30+40+60+70+80+15, EUR 9
  const paidOut = (currency: string) =>
    result.rows
      .filter((row) => row[3] === currency && row[6] === 'success')
      .reduce((sum, row) => sum + BigInt(row[4]!.replace('.', '')), 0n);
  t.is(paidOut('USD'), 32500n);
  t.is(paidOut('EUR'), 900n);
  const fees = result.rows.reduce((sum, row) => sum + (row[5] ? BigInt(row[5].replace('.', '')) : 0n), 0n);
  t.is(fees, 35n, '0.25 USD and 0.10 EUR');
});

test('when payouts runs with --tz Asia/Tokyo, then the payout at 23:30 UTC is on the next day there', async (t) => {
  // April 11th in Tokyo is [04-10 15:00Z, 04-11 15:00Z)
  const tokyo = await runReport('payouts', { from: NEXT_DAY, to: '2024-04-12' }, db.databases, { timeZone: 'Asia/Tokyo' });
  const o = history.orders;
  t.deepEqual(
    tokyo.rows.map((row) => [row[0], row[7], row[8]]),
    [
      [o.o6!.orderId, '2024-04-10T15:00:00.000Z', '2024-04-11'],
      [o.o7!.orderId, '2024-04-10T16:00:00.000Z', '2024-04-11'],
      [o.o8!.orderId, '2024-04-10T17:00:00.000Z', '2024-04-11'],
      [o.o9!.orderId, '2024-04-10T23:30:00.000Z', '2024-04-11'],
    ],
  );
  const utc = await runReport('payouts', { from: NEXT_DAY, to: '2024-04-12' }, db.databases);
  t.deepEqual(utc.rows, [], 'in UTC nothing was created on April 11th');
  const utcTenth = await runReport('payouts', { from: DAY, to: NEXT_DAY }, db.databases);
  t.is(utcTenth.rows.find((row) => row[0] === o.o9!.orderId)![8], '2024-04-10', 'in UTC the 23:30 payout is on April 10th');
  const tokyoTenth = await runReport('payouts', { from: DAY, to: NEXT_DAY, currency: 'USD' }, db.databases, { timeZone: 'Asia/Tokyo' });
  t.deepEqual(
    tokyoTenth.rows.map((row) => row[0]),
    ['o1', 'o2', 'o3', 'o4', 'o5'].map((key) => o[key]!.orderId),
  );
  t.true(tokyoTenth.rows.every((row) => row[8] === '2024-04-10'));
});

test('when payouts streams in small batches, then the merge by transaction id gives the same rows and the CSV reads back', async (t) => {
  const report = loadReport('payouts');
  const values = validateReportParams(report, { from: DAY, to: NEXT_DAY });
  const whole = await runReport('payouts', { from: DAY, to: NEXT_DAY }, db.databases);
  const rows: Array<readonly (string | null)[]> = [];
  let batches = 0;
  await streamReport(
    report,
    values,
    db.databases,
    { fetchRows: 3 },
    {
      columns: () => {},
      rows: (batch) => {
        batches += 1;
        rows.push(...batch);
      },
    },
  );
  t.is(batches, 4);
  t.deepEqual(rows, whole.rows);
  const csv = formatCsv(whole);
  t.deepEqual(parseCsv(csv), [COLUMNS, ...whole.rows.map((row) => row.map((cell) => cell ?? ''))]);
});

test('when payouts runs, then settlement_lines is probed once per order, not once for the paid line and again for a reversal', async (t) => {
  const report = loadReport('payouts');
  const values = validateReportParams(report, { from: DAY, to: NEXT_DAY });
  const orders = (await runReport('payouts', { from: DAY, to: NEXT_DAY }, db.databases)).rows.length;
  t.true(orders > 1);
  const [balance] = await explainReport(report, values, db.databases);
  // every plan node that reads settlement_lines, with how many times it ran
  const probes = balance!.plan
    .split('\n')
    .filter((line) => / on settlement_lines\b/.test(line))
    .map((line) => Number(/loops=(\d+)/.exec(line)?.[1] ?? 0));
  t.true(probes.length > 0, balance!.plan);
  t.is(
    probes.reduce((a, b) => a + b, 0),
    orders,
    balance!.plan,
  );
});
