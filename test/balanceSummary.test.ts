// balance-summary: per currency, what was owed at the start, deposits, payouts, reversals, what was
// owed at the end, read from the ledger's daily checkpoints plus their tail, on the fixed history of
// test/helpers/financeHistory.ts. Its ledger is placed on two past days (the deposits and o1-o4 on
// 2024-04-09 at 20:00 UTC, the rest on 2024-04-10 at 10:00 UTC) and both days are closed, so every
// bound below is hand-computed, and the Tokyo bounds fall inside a UTC day (checkpoint + tail).
import test from 'ava';
import { sql } from 'slonik';
import { z } from 'zod';
import { runReport } from '../reconcile/reports.ts';
import { seedFinanceHistory, type FinanceHistory } from './helpers/financeHistory.ts';
import { createTestDatabases, type TestDatabases } from './helpers/testDatabases.ts';

let db: TestDatabases;
let history: FinanceHistory;

test.before(async () => {
  db = await createTestDatabases();
  history = await seedFinanceHistory(db.databases);
  const firstDay = [history.orders.o1!, history.orders.o2!, history.orders.o3!, history.orders.o4!].map((o) => o.transactionId);
  const ledger = await db.client('ledger');
  // a history loaded from the past: the entries' times are moved (order kept per account), the
  // append-only triggers off for this session only
  await ledger.query('begin');
  await ledger.query('set local session_replication_role = replica');
  await ledger.query(
    `with moved as (
       select j.id, case when j.kind = 'deposit' or j.transaction_id = any($1::uuid[])
                         then timestamptz '2024-04-09 20:00:00+00' else timestamptz '2024-04-10 10:00:00+00' end
                    + (j.id * interval '1 millisecond') as at
         from journal_transactions j)
     update journal_transactions j set created_at = m.at from moved m where m.id = j.id`,
    [firstDay],
  );
  await ledger.query('update entries e set created_at = j.created_at from journal_transactions j where j.id = e.journal_id');
  await ledger.query('commit');
  for (const day of ['2024-04-09', '2024-04-10']) {
    const closed = await db.databases.ledger.oneFirst(sql.type(z.object({ outcome: z.string() }))`
      select outcome from ledger_close_day(${day}::date, now(), 0)`);
    if (closed !== 'closed') throw new Error(`ledger_close_day ${day}: ${closed}`);
  }
});
test.after.always(async () => {
  await db?.drop();
});

const COLUMNS = ['currency', 'opening_balance', 'credits', 'payouts', 'reversals', 'closing_balance', 'in_transit_closing', 'settled'];

test('when balance-summary covers a UTC day, then the opening comes from the previous checkpoint and the day moves it to the closing', async (t) => {
  const result = await runReport('balance-summary', { from: '2024-04-10', to: '2024-04-11' }, db.databases);
  t.deepEqual(result.columns, COLUMNS);
  // USD on 04-09: deposit 1000.00, o1-o4 held and settled (100.00). On 04-10: holds of o5-o9
  // (50+60+70+80+15 = 275.00), o5 reversed (50.00), o6, o8, o9 settled (155.00), o7 still in transit.
  t.deepEqual(result.rows, [
    ['EUR', '1000.00', '0.00', '9.00', '0.00', '991.00', '0.00', '9.00'],
    ['USD', '900.00', '0.00', '275.00', '50.00', '675.00', '70.00', '155.00'],
  ]);
  const before = await runReport('balance-summary', { from: '2024-04-01', to: '2024-04-10' }, db.databases);
  t.deepEqual(before.rows, [
    ['EUR', '0.00', '1000.00', '0.00', '0.00', '1000.00', '0.00', '0.00'],
    ['USD', '0.00', '1000.00', '100.00', '0.00', '900.00', '0.00', '100.00'],
  ]);
});

test('when balance-summary runs with --tz Asia/Tokyo, then the bounds are Tokyo midnights: a UTC checkpoint plus the tail of entries', async (t) => {
  // [2024-04-10 JST, 2024-04-11 JST) is [04-09 15:00Z, 04-10 15:00Z): all of the history
  const tenth = await runReport('balance-summary', { from: '2024-04-10', to: '2024-04-11' }, db.databases, { timeZone: 'Asia/Tokyo' });
  t.deepEqual(tenth.rows, [
    ['EUR', '0.00', '1000.00', '9.00', '0.00', '991.00', '0.00', '9.00'],
    ['USD', '0.00', '1000.00', '375.00', '50.00', '675.00', '70.00', '255.00'],
  ]);
  // [04-10 15:00Z, 04-11 15:00Z): the 04-09 checkpoint plus the 04-10 entries before 15:00, nothing moved after
  const eleventh = await runReport('balance-summary', { from: '2024-04-11', to: '2024-04-12', currency: 'USD' }, db.databases, {
    timeZone: 'Asia/Tokyo',
  });
  t.deepEqual(eleventh.rows, [['USD', '675.00', '0.00', '0.00', '0.00', '675.00', '70.00', '0.00']]);
});

test('when balance-summary and payouts cover the same period, then they tie out', async (t) => {
  const summary = await runReport('balance-summary', { from: '2024-04-01', to: '2024-05-01' }, db.databases);
  const payouts = await runReport('payouts', { from: '2024-04-01', to: '2024-05-01' }, db.databases);
  const minor = (text: string | null | undefined) => BigInt((text ?? '0').replace('.', ''));
  for (const row of summary.rows) {
    const [currency, opening, credits, out, reversals, closing, inTransit, settled] = row;
    t.is(minor(closing), minor(opening) + minor(credits) - minor(out) + minor(reversals), `${currency}: the identity`);
    const mine = payouts.rows.filter((p) => p[3] === currency);
    t.is(
      minor(out),
      mine.reduce((sum, p) => sum + minor(p[4]), 0n),
      `${currency}: payouts = every payout held`,
    );
    t.is(
      minor(reversals),
      mine.filter((p) => p[17] !== null).reduce((sum, p) => sum + minor(p[4]), 0n),
      `${currency}: reversals`,
    );
    t.is(
      minor(settled),
      mine.filter((p) => p[16] !== null).reduce((sum, p) => sum + minor(p[4]), 0n),
      `${currency}: settled`,
    );
    t.is(
      minor(inTransit),
      mine.filter((p) => p[16] === null && p[17] === null).reduce((sum, p) => sum + minor(p[4]), 0n),
    );
  }
});
