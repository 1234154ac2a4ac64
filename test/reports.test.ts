// Finance reports (sql/reports/, reconcile/reports.ts, `npm run report`) on a data set seeded
// through the real SQL functions, with every total known in advance.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import fc from 'fast-check';
import { sql } from 'slonik';
import { v4 as uuidv4, v7 as uuidv7 } from 'uuid';
import { z } from 'zod';
import { formatMinor, type Currency } from '../app/money/money.ts';
import { projectRoot } from '../app/paths.ts';
import { parseReport, splitParameters } from '../reconcile/reportDefinitions.ts';
import {
  executeReport,
  formatCsv,
  formatTable,
  listReports,
  loadReport,
  loadReportFile,
  REPORTER_ROLE,
  ReportDefinitionError,
  ReportInputError,
  runReport,
  streamReport,
  validateTimeZone,
  parseDuration,
  REPORT_FETCH_ROWS,
  type ReportResult,
} from '../reconcile/reports.ts';
import { parse as parseCsvStrict } from 'csv-parse/sync';
import { createTestDatabases, type TestDatabases } from './helpers/testDatabases.ts';

let db: TestDatabases;
const A1 = uuidv4(); // alice, USD
const A2 = uuidv4(); // bob, EUR
const A3 = uuidv4(); // carol, JPY
const ids = { d1: uuidv4(), d2: uuidv4(), d3: uuidv4(), t1: uuidv4(), t2: uuidv4(), t3: uuidv4(), t4: uuidv4(), t5: uuidv4() };
/** ISO instants of the four ledger batches, ms (as reports print them) and µs (exact, for :from/:to) */
const batchAt: Array<{ ms: string; us: string }> = [];
const breakSeen: Record<string, string> = {};
let lagOldest = '';

// ---------------------------------------------------------------- seed

/** created at an instant (`at`) or this long before now (`ago`, an interval) */
type OrderSeed = { account: string; user: string; currency: Currency; amountMinor: bigint; path: string[]; at?: string; ago?: string };
const DAY_ORDERS: OrderSeed[] = [
  { account: A1, user: 'alice', currency: 'USD', amountMinor: 1000n, path: ['processing', 'success'], at: '2024-03-01T10:00:00Z' },
  { account: A1, user: 'alice', currency: 'USD', amountMinor: 2050n, path: ['processing', 'success'], at: '2024-03-01T23:59:59Z' },
  { account: A1, user: 'alice', currency: 'USD', amountMinor: 525n, path: ['failed'], at: '2024-03-01T12:00:00Z' },
  { account: A2, user: 'bob', currency: 'EUR', amountMinor: 700n, path: ['processing', 'success'], at: '2024-03-01T11:00:00Z' },
  { account: A1, user: 'alice', currency: 'USD', amountMinor: 101n, path: ['processing', 'success'], at: '2024-03-02T00:00:00Z' },
  // 01:30 UTC on March 2nd: the day is the UTC day
  { account: A3, user: 'carol', currency: 'JPY', amountMinor: 1500n, path: ['failed'], at: '2024-03-01T23:30:00-02:00' },
  // 23:30 UTC on March 2nd: 08:30 on March 3rd in Tokyo
  { account: A1, user: 'alice', currency: 'USD', amountMinor: 4200n, path: ['processing', 'success'], at: '2024-03-02T23:30:00Z' },
];
const OPEN_ORDERS: OrderSeed[] = [
  { account: A1, user: 'alice', currency: 'USD', amountMinor: 300n, path: [], ago: '20 seconds' },
  { account: A1, user: 'alice', currency: 'USD', amountMinor: 400n, path: ['processing'], ago: '5 minutes' },
  { account: A1, user: 'alice', currency: 'USD', amountMinor: 150n, path: ['processing'], ago: '7 minutes' },
  { account: A2, user: 'bob', currency: 'EUR', amountMinor: 600n, path: ['processing'], ago: '30 minutes' },
  { account: A3, user: 'carol', currency: 'JPY', amountMinor: 700n, path: ['processing', 'manual'], ago: '5 hours' },
  { account: A1, user: 'alice', currency: 'USD', amountMinor: 200n, path: ['manual'], ago: '3 days' },
];
const RESPONSES = { created: { status: 202, body: { code: 0, msg: 'processing', data: null } } };
const FROM_STATUS: Record<string, string[]> = {
  processing: ['init'],
  success: ['processing'],
  failed: ['init'],
  manual: ['init', 'processing'],
};

async function seedBalance(): Promise<void> {
  const balance = db.databases.balance;
  for (const [id, user, currency, credit] of [
    [A1, 'alice', 'USD', 100_000],
    [A2, 'bob', 'EUR', 50_000],
    [A3, 'carol', 'JPY', 100_000],
  ] as const) {
    await balance.query(sql.unsafe`insert into accounts (id, user_id, currency) values (${id}, ${user}, ${currency})`);
    const outcome = await balance.oneFirst(sql.type(z.object({ outcome: z.string() }))`
      select outcome from account_credit(${uuidv4()}, ${id}, ${credit}, 'reports-test')`);
    if (outcome !== 'credited') throw new Error(`credit: ${outcome}`);
  }
  for (const order of [...DAY_ORDERS, ...OPEN_ORDERS]) {
    const orderId = uuidv7();
    const transactionId = uuidv7();
    const created = await balance.oneFirst(sql.type(z.object({ outcome: z.string() }))`
      select outcome from withdraw_create(${order.user}, ${uuidv7()}, 'hash', ${order.account}, 'bank-1',
        ${order.amountMinor}, ${order.currency}, ${orderId}, ${transactionId}, ${sql.json(RESPONSES)})`);
    if (created !== 'created') throw new Error(`withdraw_create: ${created}`);
    for (const to of order.path) {
      const moved = await balance.oneFirst(sql.type(z.object({ outcome: z.string() }))`
        select outcome from withdraw_transition(${transactionId}, ${sql.array(FROM_STATUS[to]!, 'text')}, ${to}, 'job', 'reports-test', 'seed')`);
      if (moved !== 'changed') throw new Error(`withdraw_transition ${to}: ${moved}`);
    }
    // created_at is immutable (withdraw_orders_guard): the test backdates with the guard off, in one transaction
    await balance.transaction(async (tx) => {
      await tx.query(sql.unsafe`alter table withdraw_orders disable trigger withdraw_orders_guard`);
      await tx.query(sql.unsafe`
        update withdraw_orders set created_at = coalesce(${order.at ?? null}::timestamptz, now() - ${order.ago ?? null}::interval)
         where id = ${orderId}`);
      await tx.query(sql.unsafe`alter table withdraw_orders enable trigger withdraw_orders_guard`);
    });
  }
}

async function seedBreaksAndOutbox(): Promise<void> {
  const balance = db.databases.balance;
  /** first seen at an instant, or this long before now (whole seconds) */
  const record = async (category: string, subject: string, firstSeen: { at?: string; ago?: string }, resolved = false) => {
    const id = await balance.oneFirst(sql.type(z.object({ id: z.bigint() }))`
      select reconciliation_record_break(${category}, ${subject}, null, null, null, 'USD', 'x', 'y', '{}') as id`);
    const seen = await balance.oneFirst(sql.type(z.object({ seen: z.number() }))`
      update reconciliation_breaks
         set first_seen_at = coalesce(${firstSeen.at ?? null}::timestamptz, date_trunc('second', now()) - ${firstSeen.ago ?? null}::interval),
             resolved_at = case when ${resolved} then now() end, resolution = case when ${resolved} then 'fixed' end
       where id = ${id} returning first_seen_at as seen`);
    breakSeen[subject] = new Date(seen).toISOString();
  };
  await record('callback_unknown_reference', 'event:e1', { ago: '10 minutes' });
  await record('callback_unknown_reference', 'event:e2', { ago: '20 minutes' });
  await record('callback_unknown_reference', 'event:e3', { ago: '3 days' });
  await record('balance_mismatch', 'account:x', { at: '2024-01-01T00:00:00Z' });
  await record('balance_mismatch', 'account:y', { at: '2023-06-01T00:00:00Z' }, true);

  // Balance outbox: everything relayed but two rows, the older 120 s old. Ledger outbox: all relayed.
  await balance.query(sql.unsafe`update outbox set relayed_at = now() where relayed_at is null`);
  const inserted = await balance.anyFirst(sql.type(z.object({ at: z.number() }))`
    insert into outbox (topic, transaction_id, payload, created_at)
    values ('reports.test', ${uuidv4()}, '{}', date_trunc('second', now()) - interval '120 seconds'),
           ('reports.test', ${uuidv4()}, '{}', date_trunc('second', now()) - interval '30 seconds')
    returning created_at as at`);
  lagOldest = new Date(Math.min(...inserted)).toISOString();
  await db.databases.ledger.query(sql.unsafe`update outbox set relayed_at = now() where relayed_at is null`);
}

const event = (kind: string, transactionId: string, accountId: string, currency: Currency, amountMinor: number) => ({
  source: 'reports-test',
  transactionId,
  kind,
  accountId,
  currency,
  amountMinor: String(amountMinor),
});

async function seedLedger(): Promise<void> {
  const batches = [
    [
      event('deposit', ids.d1, A1, 'USD', 100_000),
      event('deposit', ids.d2, A2, 'EUR', 50_000),
      event('deposit', ids.d3, A3, 'JPY', 100_000),
    ],
    [
      event('hold', ids.t1, A1, 'USD', 1000),
      event('hold', ids.t2, A1, 'USD', 2050),
      event('hold', ids.t3, A1, 'USD', 525),
      event('hold', ids.t4, A2, 'EUR', 700),
    ],
    [
      event('settle', ids.t1, A1, 'USD', 1000),
      event('settle', ids.t2, A1, 'USD', 2050),
      event('reverse', ids.t3, A1, 'USD', 525),
      event('settle', ids.t4, A2, 'EUR', 700),
    ],
    [event('hold', ids.t5, A1, 'USD', 300)],
  ];
  for (const batch of batches) {
    const posted = await db.databases.ledger.any(sql.type(z.object({ posted: z.boolean() }))`
      select posted from ledger_post(${sql.jsonb(batch)})`);
    if (posted.length !== batch.length || !posted.every((p) => p.posted)) throw new Error('ledger_post did not post the batch');
    const micros = await db.databases.ledger.oneFirst(sql.type(z.object({ us: z.string() }))`
      select (extract(epoch from j.created_at) * 1000000)::bigint::text as us
        from journal_transactions j where j.transaction_id = ${batch[0]!.transactionId} and j.kind = ${batch[0]!.kind}`);
    const ms = new Date(Number(BigInt(micros) / 1000n)).toISOString();
    batchAt.push({ ms, us: ms.replace('Z', `${micros.slice(-3)}Z`) });
  }
}

test.before(async () => {
  db = await createTestDatabases();
  await seedBalance();
  await seedLedger();
  await seedBreaksAndOutbox();
});
test.after.always(async () => {
  await db?.drop();
});

const run = (name: string, input: Parameters<typeof runReport>[1] = {}) => runReport(name, input, db.databases);

// ---------------------------------------------------------------- the reports

test('when daily-withdrawals covers two days, then each UTC day, status and currency has its count and exact sum', async (t) => {
  const result = await run('daily-withdrawals', { from: '2024-03-01', to: '2024-03-03' });
  t.deepEqual(result.columns, ['day', 'status', 'currency', 'orders', 'amount']);
  t.deepEqual(result.rows, [
    ['2024-03-01', 'success', 'EUR', '1', '7.00'],
    ['2024-03-01', 'success', 'USD', '2', '30.50'],
    ['2024-03-01', 'failed', 'USD', '1', '5.25'],
    ['2024-03-02', 'success', 'USD', '2', '43.01'],
    ['2024-03-02', 'failed', 'JPY', '1', '1500'],
  ]);
});

test('when daily-withdrawals runs with --tz Asia/Tokyo, then days and date-only bounds are Tokyo days: 23:30 UTC is the next day', async (t) => {
  const tokyo = await runReport('daily-withdrawals', { from: '2024-03-01', to: '2024-03-04' }, db.databases, { timeZone: 'Asia/Tokyo' });
  t.deepEqual(tokyo.rows, [
    ['2024-03-01', 'success', 'EUR', '1', '7.00'],
    ['2024-03-01', 'success', 'USD', '1', '10.00'],
    ['2024-03-01', 'failed', 'USD', '1', '5.25'],
    ['2024-03-02', 'success', 'USD', '2', '21.51'],
    ['2024-03-02', 'failed', 'JPY', '1', '1500'],
    ['2024-03-03', 'success', 'USD', '1', '42.00'],
  ]);
  // --from 2024-03-03 is midnight in Tokyo, 15:00 UTC on March 2nd
  const third = await runReport('daily-withdrawals', { from: '2024-03-03', to: '2024-03-04' }, db.databases, { timeZone: 'Asia/Tokyo' });
  t.deepEqual(third.rows, [['2024-03-03', 'success', 'USD', '1', '42.00']]);
  t.deepEqual((await run('daily-withdrawals', { from: '2024-03-03', to: '2024-03-04' })).rows, [], 'in UTC the order is on March 2nd');
  t.throws(() => validateTimeZone('Mars/Olympus'), { instanceOf: ReportInputError });
  t.throws(() => validateTimeZone('+09:00'), { instanceOf: ReportInputError });
  t.is(validateTimeZone('America/New_York'), 'America/New_York');
});

test('when daily-withdrawals is bounded by --to and --currency, then to is exclusive and other currencies are left out', async (t) => {
  const until = await run('daily-withdrawals', { from: '2024-03-01T00:00:00Z', to: '2024-03-02T00:00:00Z' });
  t.deepEqual(until.rows, [
    ['2024-03-01', 'success', 'EUR', '1', '7.00'],
    ['2024-03-01', 'success', 'USD', '2', '30.50'],
    ['2024-03-01', 'failed', 'USD', '1', '5.25'],
  ]);
  const usd = await run('daily-withdrawals', { from: '2024-03-01', to: '2024-03-03', currency: 'USD' });
  t.deepEqual(usd.rows, [
    ['2024-03-01', 'success', 'USD', '2', '30.50'],
    ['2024-03-01', 'failed', 'USD', '1', '5.25'],
    ['2024-03-02', 'success', 'USD', '2', '43.01'],
  ]);
  const all = await run('daily-withdrawals');
  t.is(
    all.rows.reduce((sum, row) => sum + Number(row[3]), 0),
    DAY_ORDERS.length + OPEN_ORDERS.length,
  );
});

test('when trial-balance runs, then each currency and account kind has its debits, credits and net, and the totals net to zero', async (t) => {
  const result = await run('trial-balance');
  t.deepEqual(result.columns, ['currency', 'account_kind', 'debits', 'credits', 'net']);
  t.deepEqual(result.rows, [
    ['EUR', 'user_wallet', '7.00', '500.00', '-493.00'],
    ['EUR', 'withdrawals_in_transit', '7.00', '7.00', '0.00'],
    ['EUR', 'provider_clearing', '0.00', '7.00', '-7.00'],
    ['EUR', 'funding', '500.00', '0.00', '500.00'],
    ['EUR', 'total', '514.00', '514.00', '0.00'],
    ['JPY', 'user_wallet', '0', '100000', '-100000'],
    ['JPY', 'funding', '100000', '0', '100000'],
    ['JPY', 'total', '100000', '100000', '0'],
    ['USD', 'user_wallet', '38.75', '1005.25', '-966.50'],
    ['USD', 'withdrawals_in_transit', '35.75', '38.75', '-3.00'],
    ['USD', 'provider_clearing', '0.00', '30.50', '-30.50'],
    ['USD', 'funding', '1000.00', '0.00', '1000.00'],
    ['USD', 'total', '1074.50', '1074.50', '0.00'],
  ]);
});

test('when trial-balance is asked as of an instant, then only the journals posted before it count and it still nets to zero', async (t) => {
  const result = await run('trial-balance', { to: batchAt[2]!.us });
  t.deepEqual(result.rows, [
    ['EUR', 'user_wallet', '7.00', '500.00', '-493.00'],
    ['EUR', 'withdrawals_in_transit', '0.00', '7.00', '-7.00'],
    ['EUR', 'funding', '500.00', '0.00', '500.00'],
    ['EUR', 'total', '507.00', '507.00', '0.00'],
    ['JPY', 'user_wallet', '0', '100000', '-100000'],
    ['JPY', 'funding', '100000', '0', '100000'],
    ['JPY', 'total', '100000', '100000', '0'],
    ['USD', 'user_wallet', '35.75', '1000.00', '-964.25'],
    ['USD', 'withdrawals_in_transit', '0.00', '35.75', '-35.75'],
    ['USD', 'funding', '1000.00', '0.00', '1000.00'],
    ['USD', 'total', '1035.75', '1035.75', '0.00'],
  ]);
  const nets = result.rows.filter((row) => row[1] === 'total').map((row) => row[4]);
  t.deepEqual(nets, ['0.00', '0', '0.00']);
});

test('when in-flight-aging runs, then open orders are counted by status, currency and age bucket', async (t) => {
  const result = await run('in-flight-aging');
  t.deepEqual(result.columns, ['status', 'currency', 'age_bucket', 'orders', 'amount']);
  t.deepEqual(result.rows, [
    ['init', 'USD', '< 1 min', '1', '3.00'],
    ['processing', 'EUR', '10-60 min', '1', '6.00'],
    ['processing', 'USD', '1-10 min', '2', '5.50'],
    ['manual', 'JPY', '1-24 h', '1', '700'],
    ['manual', 'USD', '> 24 h', '1', '2.00'],
  ]);
  const usd = await run('in-flight-aging', { currency: 'USD' });
  t.deepEqual(
    usd.rows.map((row) => row.slice(0, 3)),
    [
      ['init', 'USD', '< 1 min'],
      ['processing', 'USD', '1-10 min'],
      ['manual', 'USD', '> 24 h'],
    ],
  );
});

test('when account-statement covers all time, then it opens at zero, lists every entry with its running balance and closes at the balance', async (t) => {
  const result = await run('account-statement', { account: A1 });
  t.deepEqual(result.columns, ['line', 'posted_at', 'entry_sequence', 'journal_kind', 'transaction_id', 'amount', 'balance', 'currency']);
  const [b1, b2, b3, b4] = batchAt.map((at) => at.ms);
  t.deepEqual(result.rows, [
    ['opening', null, null, null, null, null, '0.00', 'USD'],
    ['entry', b1!, '1', 'deposit', ids.d1, '-1000.00', '-1000.00', 'USD'],
    ['entry', b2!, '2', 'hold', ids.t1, '10.00', '-990.00', 'USD'],
    ['entry', b2!, '3', 'hold', ids.t2, '20.50', '-969.50', 'USD'],
    ['entry', b2!, '4', 'hold', ids.t3, '5.25', '-964.25', 'USD'],
    ['entry', b3!, '5', 'reverse', ids.t3, '-5.25', '-969.50', 'USD'],
    ['entry', b4!, '6', 'hold', ids.t5, '3.00', '-966.50', 'USD'],
    ['closing', null, null, null, null, null, '-966.50', 'USD'],
  ]);
});

test('when account-statement has a range, then the opening and closing balances are those at its ends', async (t) => {
  const since = await run('account-statement', { account: A1, from: batchAt[2]!.us });
  t.deepEqual(
    since.rows.map((row) => [row[0], row[2], row[6]]),
    [
      ['opening', null, '-964.25'],
      ['entry', '5', '-969.50'],
      ['entry', '6', '-966.50'],
      ['closing', null, '-966.50'],
    ],
  );
  const until = await run('account-statement', { account: A1, to: batchAt[2]!.us });
  t.deepEqual(
    until.rows.map((row) => [row[0], row[2], row[6]]),
    [
      ['opening', null, '0.00'],
      ['entry', '1', '-1000.00'],
      ['entry', '2', '-990.00'],
      ['entry', '3', '-969.50'],
      ['entry', '4', '-964.25'],
      ['closing', null, '-964.25'],
    ],
  );
  const after = await run('account-statement', { account: A1, from: '2100-01-01' });
  t.deepEqual(
    after.rows.map((row) => [row[0], row[6]]),
    [
      ['opening', '-966.50'],
      ['closing', '-966.50'],
    ],
  );
  const unknown = await run('account-statement', { account: uuidv4() });
  t.deepEqual(unknown.rows, [], 'no wallet, no statement');
});

test('when open-breaks runs, then open breaks are counted by category and age with the oldest first seen, resolved ones left out', async (t) => {
  const result = await run('open-breaks');
  t.deepEqual(result.columns, ['category', 'age_bucket', 'breaks', 'oldest_first_seen']);
  t.deepEqual(result.rows, [
    ['balance_mismatch', '>7d', '1', '2024-01-01T00:00:00.000Z'],
    ['callback_unknown_reference', '<1h', '2', breakSeen['event:e2']!],
    ['callback_unknown_reference', '1d-7d', '1', breakSeen['event:e3']!],
  ]);
});

test('when outbox-lag runs, then each database has its unrelayed count and the age of the oldest', async (t) => {
  const result = await run('outbox-lag');
  t.deepEqual(result.columns, ['database', 'unrelayed', 'oldest_created_at', 'oldest_age_s']);
  t.deepEqual(
    result.rows.map((row) => row.slice(0, 3)),
    [
      ['balance', '2', lagOldest],
      ['ledger', '0', null],
    ],
  );
  const age = Number(result.rows[0]![3]);
  t.true(age >= 120 && age < 180, `oldest age ${age} s`);
  t.is(result.rows[1]![3], null);
});

// ---------------------------------------------------------------- output

const asStrings = (result: Pick<ReportResult, 'columns' | 'rows'>) => [
  [...result.columns],
  ...result.rows.map((row) => row.map((cell) => cell ?? '')),
];
/** csv-parse, a real RFC 4180 reader, strict about quotes and record lengths */
const parseCsv = (text: string): string[][] => parseCsvStrict(text, { relax_quotes: false, record_delimiter: '\r\n', bom: false });

test('when a report is written as CSV, then a CSV parser reads back the same header and rows', async (t) => {
  for (const name of ['daily-withdrawals', 'trial-balance', 'account-statement', 'outbox-lag']) {
    const result = await run(name, name === 'account-statement' ? { account: A1 } : {});
    t.true(result.rows.length > 0, name);
    t.deepEqual(parseCsv(formatCsv(result)), asStrings(result), name);
  }
  const tricky = {
    columns: ['a', 'b,c'],
    rows: [
      ['say "hi"', 'x\r\ny'],
      [null, 'plain'],
    ],
  };
  const csv = formatCsv(tricky);
  t.is(csv, 'a,"b,c"\r\n"say ""hi""","x\r\ny"\r\n,plain\r\n');
  t.deepEqual(parseCsv(csv), asStrings(tricky));
});

test('when a text cell starts like a spreadsheet formula, then CSV neutralises it, and a negative number stays a number', (t) => {
  const cells = [
    '=HYPERLINK("http://x","y")',
    '+1+2',
    '-2+3',
    '@SUM(A1)',
    '\tlead',
    '\rlead',
    '-',
    '-0.05',
    '-966.50',
    '1500',
    '0.00',
    'a=b',
  ];
  const csv = formatCsv({ columns: cells.map((_c, i) => `c${i}`), rows: [cells] });
  const [, row] = parseCsv(csv);
  t.deepEqual(row, [
    `'=HYPERLINK("http://x","y")`,
    "'+1+2",
    "'-2+3",
    "'@SUM(A1)",
    "'\tlead",
    "'\rlead",
    "'-",
    '-0.05',
    '-966.50',
    '1500',
    '0.00',
    'a=b',
  ]);
  t.false(
    row!.some((cell) => /^[=+@\t\r]/.test(cell) || (/^-/.test(cell) && !/^-\d+(\.\d+)?$/.test(cell))),
    'no cell a spreadsheet would evaluate',
  );
});

test('when a report has more rows than one fetch, then it streams every row in bounded batches with no cap', async (t) => {
  const { report, cleanup } = await temporaryReport(
    'many',
    [
      '-- database: ledger',
      '-- description: many rows',
      '-- params: none',
      "select g, format_minor(g - 125000, 'USD') as amount from generate_series(1, 250000) g",
    ].join('\n'),
  );
  try {
    let batches = 0;
    let largest = 0;
    let last: readonly (string | null)[] = [];
    const streamed = await streamReport(
      report,
      {},
      db.databases,
      {},
      {
        columns: (columns) => {
          t.deepEqual(columns, ['g', 'amount']);
        },
        rows: (rows) => {
          batches += 1;
          largest = Math.max(largest, rows.length);
          last = rows.at(-1)!;
        },
      },
    );
    t.is(streamed.rowCount, 250_000);
    t.is(largest, REPORT_FETCH_ROWS);
    t.is(batches, Math.ceil(250_000 / REPORT_FETCH_ROWS));
    t.deepEqual(last, ['250000', '1250.00']);
    const small = await executeReport(loadReport('daily-withdrawals'), { from: null, to: null, currency: null }, db.databases, {
      fetchRows: 2,
    });
    t.deepEqual(small.rows, (await run('daily-withdrawals')).rows, 'a fetch of 2 rows at a time gives the same report');
  } finally {
    await cleanup();
  }
});

test('when --statement-timeout is given, then it is read as a bounded duration', (t) => {
  t.is(parseDuration(undefined), 30_000);
  t.is(parseDuration('45000'), 45_000);
  t.is(parseDuration('250ms'), 250);
  t.is(parseDuration('90s'), 90_000);
  t.is(parseDuration('10min'), 600_000);
  for (const bad of ['0', '-5s', '2h', '61min', 'soon', '1.5s']) t.throws(() => parseDuration(bad), { instanceOf: ReportInputError }, bad);
});

test('when a report is written as a table, then columns are aligned and numbers right-aligned', (t) => {
  const table = formatTable({
    columns: ['kind', 'amount'],
    rows: [
      ['deposit', '-1000.00'],
      ['hold', '5.25'],
      ['closing', null],
    ],
  });
  t.is(table, ['kind       amount', '-------  --------', 'deposit  -1000.00', 'hold         5.25', 'closing', '(3 rows)', ''].join('\n'));
});

test('when format_minor formats an amount in SQL, then it is exactly what formatMinor gives in TypeScript', async (t) => {
  const Row = z.object({ text: z.string() });
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }), fc.constantFrom<Currency>('USD', 'EUR', 'GBP', 'JPY')), {
        minLength: 1,
        maxLength: 50,
      }),
      async (cases) => {
        const texts = await db.databases.ledger.anyFirst(sql.type(Row)`
          select format_minor(u.amount::numeric, u.currency) as text
            from unnest(${sql.array(
              cases.map(([amount]) => amount.toString()),
              'text',
            )}::text[],
                        ${sql.array(
                          cases.map(([, currency]) => currency),
                          'text',
                        )}::text[]) with ordinality as u(amount, currency, n)
           order by u.n`);
        t.deepEqual(
          texts,
          cases.map(([amount, currency]) => formatMinor(amount, currency)),
        );
      },
    ),
    { numRuns: 25 },
  );
});

// ---------------------------------------------------------------- safety

test('when a parameter carries SQL, then it is bound as a value: no rows, and nothing changes', async (t) => {
  const count = async () =>
    db.databases.balance.oneFirst(sql.type(z.object({ n: z.number() }))`select count(*)::int as n from withdraw_orders`);
  const before = await count();
  const injected = await executeReport(loadReport('daily-withdrawals'), { from: null, to: null, currency: "USD' or 1=1 --" }, db.databases);
  t.deepEqual(injected.rows, []);
  t.is(await count(), before);
  const error = await t.throwsAsync(run('daily-withdrawals', { currency: "USD' or 1=1 --" }), { instanceOf: ReportInputError });
  t.regex(error!.message, /--currency .* must be one of USD, EUR, GBP, JPY/);
});

async function temporaryReport(name: string, text: string) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'report-test-'));
  const file = path.join(dir, `${name}.sql`);
  await writeFile(file, text);
  return { report: loadReportFile(file), cleanup: () => rm(dir, { recursive: true, force: true }) };
}

test('when a report tries to write, then the read-only transaction refuses it and nothing is written', async (t) => {
  const writers = [
    // a cursor refuses a data-modifying statement outright
    "insert into outbox (topic, transaction_id, payload) values ('reports.write', gen_random_uuid(), '{}') returning id",
    // a function that writes is refused by the read-only transaction
    "select outcome from account_credit(gen_random_uuid(), (select id from accounts limit 1), 1, 'reports.write')",
  ];
  for (const [index, statement] of writers.entries()) {
    const { report, cleanup } = await temporaryReport(
      `writes-${index}`,
      ['-- database: balance', '-- description: tries to write', '-- params: none', statement].join('\n'),
    );
    try {
      const error = await t.throwsAsync(executeReport(report, {}, db.databases));
      const failure = error as Error & { code?: string; cause?: { code?: string } };
      t.is(failure.code ?? failure.cause?.code, index === 0 ? '42601' : '25006', `${statement}: ${error?.message}`);
    } finally {
      await cleanup();
    }
  }
  const written = await db.databases.balance.oneFirst(sql.type(z.object({ n: z.number() }))`
    select ((select count(*) from outbox where topic = 'reports.write') + (select count(*) from credits where actor = 'reports.write'))::int as n`);
  t.is(written, 0);
});

test('when the reporter role exists, then reports run as it on both databases, with a bounded statement time', async (t) => {
  const { report, cleanup } = await temporaryReport(
    'whoami',
    [
      '-- database: both',
      '-- description: who runs reports',
      '-- params: none',
      "select current_user::text as who, current_setting('transaction_read_only') as read_only, current_setting('TimeZone') as zone",
    ].join('\n'),
  );
  try {
    const result = await executeReport(report, {}, db.databases);
    t.deepEqual(result.rows, [
      ['balance', REPORTER_ROLE, 'on', 'UTC'],
      ['ledger', REPORTER_ROLE, 'on', 'UTC'],
    ]);
    t.deepEqual(result.ranAs, [
      { database: 'balance', role: REPORTER_ROLE },
      { database: 'ledger', role: REPORTER_ROLE },
    ]);
  } finally {
    await cleanup();
  }
  const slow = await temporaryReport(
    'slow',
    ['-- database: balance', '-- description: too slow', '-- params: none', 'select pg_sleep(2)::text as slept'].join('\n'),
  );
  try {
    const error = await t.throwsAsync(executeReport(slow.report, {}, db.databases, { statementTimeoutMs: 100 }));
    t.regex(String((error as Error & { cause?: Error }).cause?.message ?? error?.message), /statement timeout/);
  } finally {
    await slow.cleanup();
  }
});

test('when a report file holds a second statement, then it is refused before it reaches a database', (t) => {
  const header = '-- database: balance\n-- description: x\n-- params: none\n';
  const error = t.throws(() => parseReport('sneaky', 'sneaky.sql', `${header}select 1; commit; insert into outbox default values`), {
    instanceOf: ReportDefinitionError,
  });
  t.regex(error!.message, /one statement/);
  t.notThrows(() => parseReport('fine', 'fine.sql', `${header}select 1;\n-- trailing comment\n`));
  t.throws(() => parseReport('positional', 'p.sql', `${header}select $1`), { instanceOf: ReportDefinitionError });
  t.throws(() => parseReport('undeclared', 'u.sql', `${header}select :from`), { instanceOf: ReportDefinitionError });
});

test('when a report names its parameters, then casts, strings, identifiers, comments and dollar quotes are left alone', (t) => {
  const { pieces, placeholders } = splitParameters(
    'x',
    `select ':from'::text, "a:to", $$:currency$$, e'\\':account', :from::date -- :to\n, /* :to */ :currency`,
  );
  t.deepEqual(placeholders, ['from', 'currency']);
  t.deepEqual(pieces, [`select ':from'::text, "a:to", $$:currency$$, e'\\':account', `, `::date -- :to\n, /* :to */ `, '']);
});

test('when a report is unknown or its parameters are missing or bad, then a clear input error names them', async (t) => {
  const unknown = await t.throwsAsync(run('nope'), { instanceOf: ReportInputError });
  t.regex(
    unknown!.message,
    /unknown report "nope"; the reports are: account-statement, balance-summary, daily-withdrawals, in-flight-aging, open-breaks, outbox-lag, payouts, settlement-breaks, trial-balance/,
  );
  await t.throwsAsync(run('../balance/0001_accounts_orders'), { instanceOf: ReportInputError });
  const missing = await t.throwsAsync(run('account-statement'), { instanceOf: ReportInputError });
  t.regex(missing!.message, /--account is required/);
  const bad = await t.throwsAsync(run('account-statement', { account: 'not-a-uuid', from: '2024-13-01', currency: 'USD' }), {
    instanceOf: ReportInputError,
  });
  t.regex(bad!.message, /--currency is not a parameter of account-statement/);
  t.regex(bad!.message, /--account "not-a-uuid" must be an account id/);
  t.regex(bad!.message, /--from "2024-13-01" must be an ISO 8601 date/);
  await t.throwsAsync(run('daily-withdrawals', { from: '2024-03-02', to: '2024-03-01' }), { message: /must be before --to/ });
  t.deepEqual(
    listReports().map((r) => [r.name, r.database]),
    [
      ['account-statement', 'ledger'],
      ['balance-summary', 'ledger'],
      ['daily-withdrawals', 'balance'],
      ['in-flight-aging', 'balance'],
      ['open-breaks', 'balance'],
      ['outbox-lag', 'both'],
      ['payouts', 'balance'],
      ['settlement-breaks', 'balance'],
      ['trial-balance', 'ledger'],
    ],
  );
});

// ---------------------------------------------------------------- the command

function reportCommand(args: string[], command: readonly string[] = [process.execPath, '--import', 'tsx', 'reconcile/reportMain.ts']) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(command[0]!, [...command.slice(1), ...args], {
      cwd: projectRoot,
      env: { ...process.env, BALANCE_DATABASE_URL: db.balanceUrl, LEDGER_DATABASE_URL: db.ledgerUrl, LOG_LEVEL: 'silent' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('when npm run report is given a report and --csv, then it prints the CSV; a bad request exits with 2', async (t) => {
  const expected = await run('daily-withdrawals', { from: '2024-03-01', to: '2024-03-03', currency: 'USD' });
  const ok = await reportCommand(['daily-withdrawals', '--from', '2024-03-01', '--to', '2024-03-03', '--currency', 'USD', '--csv']);
  t.is(ok.code, 0, ok.stderr);
  t.is(ok.stdout, formatCsv(expected));
  const table = await reportCommand(['outbox-lag']);
  t.is(table.code, 0, table.stderr);
  t.regex(table.stdout, /^database +unrelayed +oldest_created_at +oldest_age_s\n/);
  const unknown = await reportCommand(['nope']);
  t.is(unknown.code, 2);
  t.regex(unknown.stderr, /unknown report "nope"/);
  const missing = await reportCommand(['account-statement', '--from', 'yesterday']);
  t.is(missing.code, 2);
  t.regex(missing.stderr, /--account is required; --from "yesterday" must be an ISO 8601 date/);
});

test('when the documented `npm run --silent report -- <name> --csv` runs, then standard output is exactly the CSV', async (t) => {
  const expected = await runReport('daily-withdrawals', { from: '2024-03-01', to: '2024-03-04' }, db.databases, { timeZone: 'Asia/Tokyo' });
  const args = [
    'daily-withdrawals',
    '--from',
    '2024-03-01',
    '--to',
    '2024-03-04',
    '--tz',
    'Asia/Tokyo',
    '--statement-timeout',
    '20s',
    '--csv',
  ];
  const npm = await reportCommand(args, ['npm', 'run', '--silent', 'report', '--']);
  t.is(npm.code, 0, npm.stderr);
  t.is(npm.stdout, formatCsv(expected));
  t.deepEqual(parseCsv(npm.stdout), asStrings(expected));
  const badZone = await reportCommand(['daily-withdrawals', '--tz', 'Mars/Olympus', '--csv']);
  t.is(badZone.code, 2);
  t.is(badZone.stdout, '');
  t.regex(badZone.stderr, /--tz "Mars\/Olympus" must be an IANA time zone/);
});
