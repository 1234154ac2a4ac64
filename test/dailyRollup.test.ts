// The daily-withdrawals rollup (sql/balance/0021_withdraw_daily_rollup.sql): the report read from
// the rollup equals the scan of withdraw_orders it replaces, on a fixed history, in every state the
// rollup can be in (not built, built, deltas not folded yet, folded), for whole and ragged ranges
// and zones whose offsets are not whole hours; and once built it reads no order of all history.
import test from 'ava';
import type pg from 'pg';
import { v7 as uuidv7 } from 'uuid';
import { foldDailyWithdrawals, rebuildDailyWithdrawals, runDailyFold } from '../reconcile/dailyRollup.ts';
import { explainReport, loadReport, runReport, validateReportParams, type ReportParamsInput } from '../reconcile/reports.ts';
import { createTestDatabases, type TestDatabases } from './helpers/testDatabases.ts';

let db: TestDatabases;
let balance: pg.Client;

/** daily-withdrawals as it was before the rollup: one scan of withdraw_orders (the oracle) */
const SCAN = `
  with orders as (
    select (o.created_at at time zone current_setting('TimeZone'))::date as day, o.status, o.currency, o.amount_minor
      from withdraw_orders o
     where o.created_at >= coalesce($1::timestamptz, '-infinity') and o.created_at < coalesce($2::timestamptz, 'infinity')
       and ($3::text is null or o.currency = $3::text)
  )
  select day::text as day, status, currency, count(*)::text as orders, format_minor(sum(amount_minor), currency) as amount
    from orders
   group by day, status, currency
   order by day, array_position(array['init', 'processing', 'manual', 'success', 'failed'], status), currency`;

const CURRENCIES = ['USD', 'EUR', 'JPY'] as const;
const accounts: Record<string, string> = {};
const orderIds: string[] = [];
/** the history starts here; an order every 17 min 13 s for three days */
const START = Date.parse('2024-03-01T00:00:00Z');
const STEP_MS = (17 * 60 + 13) * 1000;
const PATHS = [['processing', 'success'], ['processing', 'success'], ['failed'], ['processing'], ['processing', 'manual'], []];

async function insertOrder(i: number, at: number): Promise<string> {
  const currency = CURRENCIES[i % 3]!;
  const id = uuidv7();
  await balance.query(
    `insert into withdraw_orders (id, transaction_id, user_id, account_id, to_account_id, amount_minor, currency, status, created_at)
     values ($1, $2, 'rollup-user', $3, 'bank-1', $4, $5, 'init', $6)`,
    [id, uuidv7(), accounts[currency], String(100 + ((i * 7919) % 100_000)), currency, new Date(at).toISOString()],
  );
  return id;
}

async function move(id: string, path: readonly string[]): Promise<void> {
  for (const status of path) await balance.query('update withdraw_orders set status = $2 where id = $1', [id, status]);
}

test.before(async () => {
  db = await createTestDatabases();
  balance = await db.client('balance');
  for (const currency of CURRENCIES) {
    const { rows } = await balance.query<{ id: string }>(
      `insert into accounts (user_id, currency, balance_minor, available_minor) values ('rollup-user', $1, 0, 0) returning id`,
      [currency],
    );
    accounts[currency] = rows[0]!.id;
  }
  for (let i = 0; i < 250; i += 1) {
    const id = await insertOrder(i, START + i * STEP_MS);
    orderIds.push(id);
    await move(id, PATHS[i % PATHS.length]!);
  }
});

test.after.always(async () => {
  await balance?.end();
  await db?.drop();
});

type Case = Readonly<{ input: ReportParamsInput; timeZone: string }>;
const CASES: readonly Case[] = [
  { input: {}, timeZone: 'UTC' },
  { input: {}, timeZone: 'Asia/Tokyo' },
  { input: { from: '2024-03-01', to: '2024-03-03' }, timeZone: 'UTC' },
  { input: { from: '2024-03-01', to: '2024-03-03' }, timeZone: 'Asia/Kathmandu' },
  { input: { from: '2024-03-02', to: '2024-03-04', currency: 'JPY' }, timeZone: 'America/St_Johns' },
  // off the quarter hours at both ends
  { input: { from: '2024-03-01T10:07:30Z', to: '2024-03-02T13:52:01.5Z' }, timeZone: 'UTC' },
  { input: { from: '2024-03-01T10:07:30+05:30', to: '2024-03-03T00:00:00Z', currency: 'EUR' }, timeZone: 'Asia/Kolkata' },
  // inside one bucket, and across exactly one
  { input: { from: '2024-03-01T05:01:00Z', to: '2024-03-01T05:14:00Z' }, timeZone: 'UTC' },
  { input: { from: '2024-03-01T05:00:00Z', to: '2024-03-01T05:15:00Z' }, timeZone: 'UTC' },
  { input: { from: '2024-03-01T05:10:00Z' }, timeZone: 'UTC' },
  { input: { to: '2024-03-02T07:40:00Z' }, timeZone: 'Australia/Eucla' },
];

async function scan(c: Case): Promise<string[][]> {
  await balance.query('begin');
  try {
    await balance.query(`select set_config('TimeZone', $1, true)`, [c.timeZone]);
    const values = validateReportParams(loadReport('daily-withdrawals'), c.input);
    const { rows } = await balance.query({ text: SCAN, values: [values.from, values.to, values.currency], rowMode: 'array' });
    return rows as string[][];
  } finally {
    await balance.query('commit');
  }
}

async function report(c: Case): Promise<string[][]> {
  const result = await runReport('daily-withdrawals', c.input, db.databases, { timeZone: c.timeZone });
  return result.rows.map((row) => row.map((cell) => String(cell)));
}

async function assertEqualsScan(t: import('ava').ExecutionContext, state: string): Promise<void> {
  for (const c of CASES) {
    const expected = await scan(c);
    t.true(expected.length > 0 || c.input.from === '2024-03-01T05:01:00Z', `${state}: the case has rows`);
    t.deepEqual(await report(c), expected, `${state}: ${JSON.stringify(c)}`);
  }
}

const deltas = async () => Number((await balance.query<{ n: string }>('select count(*) as n from withdraw_daily_deltas')).rows[0]!.n);

test.serial('when the rollup is not built, then daily-withdrawals equals the scan of withdraw_orders', async (t) => {
  t.is((await balance.query('select built_at from withdraw_daily_state')).rows[0].built_at, null);
  await assertEqualsScan(t, 'not built');
});

test.serial('when the fold job builds the rollup, then the deltas are absorbed and daily-withdrawals equals the scan', async (t) => {
  t.true((await deltas()) > 0, 'the orders wrote deltas');
  const run = await runDailyFold({ pool: db.databases.balance });
  t.is(run.rebuilt?.orders, 250n);
  t.is(await deltas(), 0);
  await assertEqualsScan(t, 'built');
});

test.serial('when orders are placed and change status after the build, then the report is exact before and after the fold', async (t) => {
  for (let i = 250; i < 300; i += 1) {
    const id = await insertOrder(i, START + (i - 250) * 4_001_000);
    orderIds.push(id);
    await move(id, PATHS[(i + 1) % PATHS.length]!);
  }
  // open orders move on: processing ones settle, manual ones are resolved
  const { rows } = await balance.query<{ id: string; status: string }>(
    `select id, status from withdraw_orders where status in ('processing', 'manual') order by id limit 40`,
  );
  for (const row of rows) await move(row.id, [row.status === 'manual' ? 'failed' : 'success']);
  t.true((await deltas()) > 0);
  await assertEqualsScan(t, 'deltas not folded');
  // a fold bounded to fewer rows than there are leaves the rest for the next run
  const partial = await foldDailyWithdrawals(db.databases.balance, 7);
  t.deepEqual(partial, { outcome: 'folded', folded: 7, left_over: true });
  await assertEqualsScan(t, 'partly folded');
  const run = await runDailyFold({ pool: db.databases.balance });
  t.is(run.rebuilt, null);
  t.false(run.leftOver);
  t.is(await deltas(), 0);
  await assertEqualsScan(t, 'folded');
});

test.serial('when the rollup is built again from scratch, then nothing is counted twice', async (t) => {
  await move(orderIds[3]!, ['success']);
  const rebuilt = await rebuildDailyWithdrawals(db.databases.balance);
  t.is(rebuilt.orders, 300n);
  t.is(await deltas(), 0);
  await assertEqualsScan(t, 'rebuilt');
});

test.serial('when the rollup is built and folded, then daily-withdrawals over all history reads no withdraw_orders row', async (t) => {
  await runDailyFold({ pool: db.databases.balance });
  const definition = loadReport('daily-withdrawals');
  const [explained] = await explainReport(definition, validateReportParams(definition, {}), db.databases);
  const lines = explained!.plan.split('\n').filter((line) => / on withdraw_orders\b/.test(line));
  t.true(lines.length > 0, 'the plan has its withdraw_orders arms');
  for (const line of lines) {
    const rows = /actual [^)]*rows=([\d.]+)/.exec(line);
    t.true(/never executed/.test(line) || (rows !== null && Number(rows[1]) === 0), line.trim());
  }
});

test.serial('when withdraw_daily_rebuild runs outside a repeatable read transaction, then it refuses', async (t) => {
  const error = await t.throwsAsync(balance.query('select * from withdraw_daily_rebuild()'));
  t.regex(error!.message, /repeatable read/);
});
