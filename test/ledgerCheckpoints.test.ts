// Ledger checkpoints (sql/ledger/0006_checkpoints.sql, reconcile/ledgerCheckpoints.ts): the job
// closes each UTC day once it is over plus the settle margin, the figures are those of the day's
// entries (ledger:verify recomputes them and names any difference), and the trial balance, account
// statements and balances at an instant read checkpoint plus tail with the same results as a scan
// of every entry. The job's clock is a seam: a test closes "today" by running it as of tomorrow.
import test from 'ava';
import { sql, type DatabasePool } from 'slonik';
import { v4 as uuidv4 } from 'uuid';
import { z } from 'zod';
import { closeLedgerDay, runLedgerCheckpoints } from '../reconcile/ledgerCheckpoints.ts';
import { verifyLedger } from '../reconcile/ledgerVerify.ts';
import { runReport } from '../reconcile/reports.ts';
import { createTestDatabases, type TestDatabases } from './helpers/testDatabases.ts';

type Kind = 'deposit' | 'hold' | 'settle' | 'reverse';
const SETTLE_MS = 15 * 60_000;
const DAY_MS = 86_400_000;

async function post(ledger: DatabasePool, events: ReadonlyArray<[Kind, string, string, string, string]>) {
  await ledger.any(sql.type(z.object({ posted: z.boolean() }))`
    select posted from ledger_post(${sql.jsonb(
      events.map(([kind, transactionId, accountId, currency, amountMinor]) => ({
        source: 'checkpoint-test',
        transactionId,
        kind,
        accountId,
        currency,
        amountMinor,
      })),
    )})`);
}

const today = () => new Date().toISOString().slice(0, 10);
/** the instant the job must run at to close today: tomorrow plus the margin */
const afterToday = () => new Date(Date.parse(`${today()}T00:00:00Z`) + DAY_MS + SETTLE_MS + 1_000);

async function withLedger(fn: (db: TestDatabases, wallets: { usd: string; eur: string }) => Promise<void>) {
  const db = await createTestDatabases({ poolSizeMax: 4 });
  try {
    const wallets = { usd: uuidv4(), eur: uuidv4() };
    const [w1, w2] = [uuidv4(), uuidv4()];
    await post(db.databases.ledger, [
      ['deposit', uuidv4(), wallets.usd, 'USD', '10000'],
      ['deposit', uuidv4(), wallets.eur, 'EUR', '5000'],
    ]);
    await post(db.databases.ledger, [['hold', w1, wallets.usd, 'USD', '2500']]);
    await post(db.databases.ledger, [
      ['settle', w1, wallets.usd, 'USD', '2500'],
      ['hold', w2, wallets.eur, 'EUR', '700'],
    ]);
    await post(db.databases.ledger, [['reverse', w2, wallets.eur, 'EUR', '700']]);
    await fn(db, wallets);
  } finally {
    await db.drop();
  }
}

const CheckpointRow = z.object({
  code: z.string(),
  day: z.string(),
  opening: z.bigint(),
  closing: z.bigint(),
  debits: z.bigint(),
  credits: z.bigint(),
  entries: z.bigint(),
  lastSequence: z.bigint(),
});
async function checkpoints(ledger: DatabasePool) {
  return ledger.any(sql.type(CheckpointRow)`
    select a.code, to_char(c.day, 'YYYY-MM-DD') as day, c.opening_balance_minor as opening, c.closing_balance_minor as closing,
           c.debits_minor as debits, c.credits_minor as credits, c.entry_count as entries, c.last_account_sequence as "lastSequence"
      from ledger_checkpoints c join ledger_accounts a on a.id = c.ledger_account_id order by a.code, c.day`);
}

const close = (db: TestDatabases, now: Date) =>
  runLedgerCheckpoints({ ledger: db.databases.ledger, settleMs: SETTLE_MS, daysMax: 31, statementTimeoutMs: 60_000, now });

test('when a day is over plus the settle margin, then the job closes it with every account’s figures and ledger:verify finds them right', async (t) => {
  await withLedger(async (db, wallets) => {
    const ledger = db.databases.ledger;
    const early = await close(db, new Date(Date.parse(`${today()}T00:00:00Z`) + DAY_MS + SETTLE_MS - 1_000));
    t.like(early, { closed: [], nextDay: today(), stoppedBy: 'not_due' }, 'not before the margin has passed');
    t.deepEqual(await checkpoints(ledger), []);

    const run = await close(db, afterToday());
    t.deepEqual(
      run.closed.map((d) => [d.day, d.accounts, d.entryCount]),
      [[today(), 7, 12n]],
    );
    t.like(run, { stoppedBy: 'not_due' });
    const rows = new Map((await checkpoints(ledger)).map((r) => [r.code, r]));
    t.is(rows.size, 7, 'every account with entries today (EUR provider clearing has none)');
    t.deepEqual(rows.get(`wallet:${wallets.usd}`), {
      code: `wallet:${wallets.usd}`,
      day: today(),
      opening: 0n,
      closing: -7_500n,
      debits: 2_500n,
      credits: 10_000n,
      entries: 2n,
      lastSequence: 2n,
    });
    t.like(rows.get('in_transit:EUR'), { opening: 0n, closing: 0n, debits: 700n, credits: 700n, entries: 2n, lastSequence: 2n });
    t.like(rows.get('provider_clearing:USD'), { closing: -2_500n, debits: 0n, credits: 2_500n, entries: 1n });

    const totals = await ledger.any(sql.type(
      z.object({ currency: z.string(), kind: z.string(), closing: z.bigint(), entries: z.bigint() }),
    )`
      select currency, account_kind as kind, closing_balance_minor as closing, entry_count as entries
        from ledger_checkpoint_totals order by currency, account_kind`);
    t.deepEqual(
      totals.map((r) => `${r.currency} ${r.kind} ${r.closing} ${r.entries}`),
      [
        'EUR funding 5000 1',
        'EUR user_wallet -5000 3',
        'EUR withdrawals_in_transit 0 2',
        'USD funding 10000 1',
        'USD provider_clearing -2500 1',
        'USD user_wallet -7500 2',
        'USD withdrawals_in_transit 0 2',
      ],
      'one row per currency and kind with entries',
    );
    const verified = await verifyLedger(ledger);
    t.deepEqual(verified.breaks, []);
    t.like(verified, { clean: true, checkpointsChecked: 7, closedThrough: today() });

    t.like(await close(db, afterToday()), { closed: [], stoppedBy: 'not_due' }, 'a second run closes nothing');
    t.like(await closeLedgerDay(ledger, { day: today(), now: afterToday(), settleMs: SETTLE_MS }), { outcome: 'already_closed' });
    const later = new Date(Date.parse(`${today()}T00:00:00Z`) + 3 * DAY_MS);
    t.like(
      await closeLedgerDay(ledger, { day: later.toISOString().slice(0, 10), now: new Date(later.getTime() + 2 * DAY_MS), settleMs: 0 }),
      { outcome: 'out_of_order' },
    );
  });
});

test('when the job runs after empty days, then it closes them too, one totals row per currency and kind each, bounded per run', async (t) => {
  await withLedger(async (db) => {
    const ledger = db.databases.ledger;
    const fourDaysLater = new Date(Date.parse(`${today()}T00:00:00Z`) + 4 * DAY_MS + SETTLE_MS);
    const bounded = await runLedgerCheckpoints({ ledger, settleMs: SETTLE_MS, daysMax: 2, statementTimeoutMs: 60_000, now: fourDaysLater });
    t.is(bounded.closed.length, 2);
    t.is(bounded.stoppedBy, 'days_max');
    const rest = await close(db, fourDaysLater);
    t.deepEqual(
      rest.closed.map((d) => d.entryCount),
      [0n, 0n],
    );
    const perDay = await ledger.anyFirst(sql.type(z.object({ n: z.number() }))`
      select count(*)::int as n from ledger_checkpoint_totals group by day order by day`);
    t.deepEqual(perDay, [7, 7, 7, 7], 'the empty days carry every currency and kind over');
    t.is((await checkpoints(ledger)).length, 7, 'accounts without entries on a day get no row');
    t.like(await verifyLedger(ledger), {
      clean: true,
      closedThrough: new Date(fourDaysLater.getTime() - DAY_MS - SETTLE_MS).toISOString().slice(0, 10),
    });
  });
});

test('when a checkpoint, a totals row or a closed day’s entries are changed, then ledger:verify names each difference', async (t) => {
  await withLedger(async (db, wallets) => {
    const ledger = db.databases.ledger;
    await close(db, afterToday());
    const su = await db.client('ledger');
    await su.query(
      `update ledger_checkpoints set closing_balance_minor = closing_balance_minor + 1, debits_minor = debits_minor + 1
        where ledger_account_id = (select id from ledger_accounts where code = $1)`,
      [`wallet:${wallets.usd}`],
    );
    await su.query(`update ledger_checkpoint_totals set credits_minor = credits_minor + 5, closing_balance_minor = closing_balance_minor - 5
                     where currency = 'EUR' and account_kind = 'funding'`);
    await su.query(`delete from ledger_checkpoints where ledger_account_id = (select id from ledger_accounts where code = 'funding:USD')`);
    const result = await verifyLedger(ledger);
    const seen = result.breaks.map((b) => `${b.kind} ${b.accountCode} ${b.expected} / ${b.found}`).sort();
    t.deepEqual(seen, [
      `checkpoint_mismatch wallet:${wallets.usd} closing_balance_minor -7500 / closing_balance_minor -7499`,
      `checkpoint_mismatch wallet:${wallets.usd} debits_minor 2500 / debits_minor 2501`,
      'checkpoint_missing funding:USD a checkpoint of 1 entries / none',
      'checkpoint_totals funding:EUR credits_minor 0 / credits_minor 5',
    ]);
    t.true(result.breaks.every((b) => b.day === today()));
  });
});

test('when the trial balance, a statement and a balance at an instant are read after the days closed, then they equal a scan of every entry', async (t) => {
  await withLedger(async (db, wallets) => {
    const ledger = db.databases.ledger;
    const databases = db.databases;
    const middle = await ledger.oneFirst(sql.type(z.object({ at: z.string() }))`
      select to_char(min(created_at) at time zone 'UTC' + interval '1 microsecond', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as at
        from journal_transactions where kind = 'settle'`);
    const before = {
      all: await runReport('trial-balance', {}, databases),
      asOf: await runReport('trial-balance', { to: middle }, databases),
      statement: await runReport('account-statement', { account: wallets.usd }, databases),
      range: await runReport('account-statement', { account: wallets.usd, from: middle }, databases),
    };
    t.true(before.all.rows.length > 0);
    await close(db, afterToday());
    t.deepEqual(await runReport('trial-balance', {}, databases), before.all);
    t.deepEqual(await runReport('trial-balance', { to: middle }, databases), before.asOf);
    t.deepEqual(await runReport('account-statement', { account: wallets.usd }, databases), before.statement);
    t.deepEqual(await runReport('account-statement', { account: wallets.usd, from: middle }, databases), before.range);
    const tomorrow = new Date(Date.parse(`${today()}T00:00:00Z`) + DAY_MS).toISOString();
    t.deepEqual(await runReport('trial-balance', { to: tomorrow }, databases), before.all, 'all of today: the checkpoints alone');

    // a later day's entries are the tail
    await post(ledger, [['deposit', uuidv4(), wallets.usd, 'USD', '1']]);
    const BalanceAt = z.object({ balance: z.bigint(), sequence: z.bigint() });
    const at = async (code: string, instant: string) =>
      ledger.one(sql.type(BalanceAt)`
        select b.balance_minor as balance, b.account_sequence as sequence
          from ledger_accounts a cross join lateral ledger_account_balance_at(a.id, ${instant}::timestamptz) b where a.code = ${code}`);
    t.deepEqual(
      await at(`wallet:${wallets.usd}`, middle),
      { balance: -7_500n, sequence: 2n },
      'after the hold and its settle, before the new deposit',
    );
    t.deepEqual(await at(`wallet:${wallets.usd}`, 'infinity'), { balance: -7_501n, sequence: 3n });
    t.deepEqual(await at(`wallet:${wallets.usd}`, '2000-01-01T00:00:00Z'), { balance: 0n, sequence: 0n });
    t.deepEqual(await at('in_transit:USD', tomorrow), { balance: 0n, sequence: 2n });
  });
});

test('when a posting waits for another to create its wallet, then its entries are dated after the postings that overtook it (created_at never goes back along an account)', async (t) => {
  await withLedger(async (db, wallets) => {
    const ledger = db.databases.ledger;
    const blocker = await db.client('ledger');
    const late = uuidv4();
    // an uncommitted insert of the late posting's wallet: its insert ... on conflict waits for it
    await blocker.query('begin');
    await blocker.query(`insert into ledger_accounts (code, kind, currency, external_id) values ($1, 'user_wallet', 'USD', $2)`, [
      `wallet:${late}`,
      late,
    ]);
    const waiting = post(ledger, [['deposit', uuidv4(), late, 'USD', '100']]);
    const watcher = await db.client('ledger');
    for (let i = 0; ; i += 1) {
      const { rows } = await watcher.query<{ n: number }>(
        `select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and query like '%ledger_post%' and pid <> pg_backend_pid()`,
      );
      if ((rows[0]?.n ?? 0) > 0) break;
      if (i > 200) throw new Error('the posting never waited');
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    // meanwhile another deposit in USD goes through in_transit's and funding's chains first
    await post(ledger, [['deposit', uuidv4(), wallets.usd, 'USD', '50']]);
    await blocker.query('rollback');
    await waiting;
    const result = await verifyLedger(ledger);
    t.deepEqual(
      result.breaks.filter((b) => b.kind === 'created_at_order'),
      [],
    );
    t.true(
      result.clean,
      JSON.stringify(result.breaks, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)),
    );
  });
});
