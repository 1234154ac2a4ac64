// Settlement statements: strict parsing, idempotent import, re-issues, and the three-way matching
// (statement × orders × ledger) that raises a break of every category on a fixed history
// (test/helpers/financeHistory.ts), through the documented command. The tests build on each
// other (import, re-import, re-issue, replace, resolve), so they run in order.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { sql } from 'slonik';
import { z } from 'zod';
import { createLogger } from '../app/logger.ts';
import { projectRoot } from '../app/paths.ts';
import { runReport } from '../reconcile/reports.ts';
import { importAndMatch, assertDayIsOver } from '../reconcile/settlementImport.ts';
import { matchSettlements, SETTLEMENT_CATEGORIES } from '../reconcile/settlementMatch.ts';
import { parseStatement, StatementFormatError } from '../reconcile/settlementStatement.ts';
import { DAY, dayStatement, NEXT_DAY, seedFinanceHistory, type FinanceHistory } from './helpers/financeHistory.ts';
import { call } from './helpers/http.ts';
import { startTestSystem, type TestSystem } from './helpers/system.ts';

let system: TestSystem;
let history: FinanceHistory;
let dir: string;
const logger = createLogger({ level: 'silent', name: 'test-settlements' });

test.before(async () => {
  system = await startTestSystem({ env: { RECONCILE_SETTLE_MS: '0' } });
  history = await seedFinanceHistory(system.db.databases);
  dir = await mkdtemp(path.join(os.tmpdir(), 'settlements-test-'));
});
test.after.always(async () => {
  await system?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const CATEGORIES = [...SETTLEMENT_CATEGORIES, 'settlement_statement_reissued'];
const BreakRow = z.object({
  id: z.bigint(),
  category: z.string(),
  subject: z.string(),
  expected: z.string().nullable(),
  actual: z.string().nullable(),
  seenCount: z.number(),
  lastSeenAt: z.number(),
  resolution: z.string().nullable(),
});
async function breaks(state: 'open' | 'all' = 'open') {
  return system.db.databases.balance.any(sql.type(BreakRow)`
    select id, category, subject, expected, actual, seen_count as "seenCount", last_seen_at as "lastSeenAt", resolution
      from reconciliation_breaks
     where category = any(${sql.array(CATEGORIES, 'text')}) and (${state} = 'all' or resolved_at is null)
     order by category, subject`);
}
const keys = (rows: ReadonlyArray<{ category: string; subject: string }>) => rows.map((r) => `${r.category} ${r.subject}`).sort();
const tx = (key: string) => history.orders[key]!.transactionId;

/** What the tables hold, to compare before and after an import that must change nothing. */
async function snapshot() {
  const { balance } = system.db.databases;
  const text = z.object({ t: z.string().nullable() });
  return {
    statements: await balance.oneFirst(sql.type(text)`select string_agg(s::text, '|' order by id) as t from settlement_statements s`),
    lines: await balance.oneFirst(
      sql.type(text)`select string_agg(l::text, '|' order by statement_id, line_number) as t from settlement_lines l`,
    ),
    breaks: await balance.oneFirst(sql.type(text)`select string_agg(b::text, '|' order by id) as t from reconciliation_breaks b`),
  };
}

function command(script: string, args: string[]) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn('npm', ['run', '--silent', script, '--', ...args], {
      cwd: projectRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        NODE_ENV: 'test',
        LOG_LEVEL: 'warn',
        BALANCE_DATABASE_URL: system.db.balanceUrl,
        LEDGER_DATABASE_URL: system.db.ledgerUrl,
        RECONCILE_SETTLE_MS: '0',
      },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

async function statementFile(name: string, csv: string): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, csv);
  return file;
}

test.serial('when a statement is not what the contract says, then it is refused whole, naming the line', (t) => {
  const header = 'reference,amount,currency,status,settledAt,fee\r\n';
  const refuse = (csv: string, pattern: RegExp, date: string | null = null) => {
    const error = t.throws(() => parseStatement(csv, date), { instanceOf: StatementFormatError });
    t.regex(error!.message, pattern);
  };
  refuse('reference,amount,currency,status\r\n', /the header must be/);
  refuse(`${header}r1,10.001,USD,paid,${DAY}T10:00:00Z,0.00\r\n`, /line 1: amount "10.001" is not a positive USD amount/);
  refuse(`${header}r1,10.00,XYZ,paid,${DAY}T10:00:00Z,0.00\r\n`, /line 1: currency "XYZ" is not one of ours/);
  refuse(`${header}r1,10.00,USD,settled,${DAY}T10:00:00Z,0.00\r\n`, /status "settled" must be paid or reversed/);
  refuse(`${header}r1,10.00,USD,paid,${DAY}T10:00:00Z,-1.00\r\n`, /fee "-1.00"/);
  refuse(
    `${header}r1,10.00,USD,paid,${DAY}T10:00:00Z,0.00\r\nr2,10.00,USD,paid,${NEXT_DAY}T00:00:01Z,0.00\r\n`,
    /line 2: settled .* not on the statement's day/,
  );
  refuse(`${header}r1,10.00,USD,paid,${DAY}T10:00:00Z\r\n`, /not RFC 4180 CSV/);
  refuse(header, /an empty statement says nothing of its day/);
  t.throws(() => assertDayIsOver('2999-01-01'), { message: /not final before that day is over/ });
  // the same lines with other line ends and quoting are the same statement
  const crlf = parseStatement(dayStatement(history), null);
  const lf = parseStatement(
    dayStatement(history)
      .replaceAll('\r\n', '\n')
      .replace(/^([0-9a-f-]{36}),/gm, '"$1",'),
    DAY,
  );
  t.is(crlf.date, DAY);
  t.is(crlf.sha256, lf.sha256);
  t.is(crlf.lines.length, 13);
  t.deepEqual({ amountMinor: crlf.lines[0]!.amountMinor, feeMinor: crlf.lines[0]!.feeMinor }, { amountMinor: 1000n, feeMinor: 25n });
});

test.serial(
  'when the day is imported with the documented command, then every kind of settlement break is raised, and none for a clean line',
  async (t) => {
    const file = await statementFile('day.csv', dayStatement(history));
    const result = await command('settlement:import', ['--file', file, '--as', 'finance-alice']);
    t.is(result.code, 1, result.stderr);
    t.regex(result.stdout, new RegExp(`^statement of ${DAY} \\(13 lines\\): imported as statement \\d+\\n`));
    t.regex(result.stdout, /11 references, 9 paid orders looked for \(1 wait for another day's statement\); 9 breaks, 0 cleared/);
    const open = await breaks();
    t.deepEqual(
      keys(open),
      [
        `settlement_amount_mismatch settlement:${tx('o3')}`,
        `settlement_currency_mismatch settlement:${tx('o4')}`,
        `settlement_duplicated settlement:${tx('o6')}`,
        `settlement_extra settlement:${history.strangerReference}`,
        'settlement_extra settlement:PROVIDER-ADJ-1',
        `settlement_ledger_mismatch settlement:${tx('o7')}`,
        `settlement_missing order:${history.orders.o2!.orderId}`,
        `settlement_status_mismatch settlement:${tx('o5')}`,
        `settlement_status_mismatch settlement:${tx('o8')}`,
      ].sort(),
    );
    const of = (category: string, key: string) => open.find((b) => b.category === category && b.subject.includes(tx(key)))!;
    t.is(of('settlement_amount_mismatch', 'o3').expected, '3000 minor units (the order)');
    t.is(of('settlement_amount_mismatch', 'o3').actual, `3100 minor units, paid on ${DAY}#2`);
    t.regex(of('settlement_currency_mismatch', 'o4').actual!, /paid 40\.00 EUR/);
    t.is(of('settlement_status_mismatch', 'o5').expected, 'not paid (the order is failed)');
    t.regex(of('settlement_status_mismatch', 'o8').actual!, new RegExp(`reversed 80\\.00 USD on ${DAY}#9`));
    t.is(of('settlement_ledger_mismatch', 'o7').actual, 'no settle journal');
    t.regex(of('settlement_duplicated', 'o6').actual!, /#5; paid 60\.00 USD on .*#6/);
    t.is(open.find((b) => b.category === 'settlement_missing')!.expected, `a paid line on a statement of ${DAY}`);
  },
);

test.serial('when the next day is imported, then the order paid across midnight is judged and found on the first day', async (t) => {
  const before = await breaks();
  const result = await importAndMatch({
    databases: system.db.databases,
    config: system.config,
    logger,
    statement: { csv: 'reference,amount,currency,status,settledAt,fee\n', date: NEXT_DAY },
    source: { kind: 'file', name: 'next.csv', importedBy: 'finance-alice' },
    replace: false,
  });
  t.is(result.outcome.kind, 'imported');
  t.like(result.match, { references: 0, ordersLookedFor: 1, ordersPending: 0, breaksResolved: 0 });
  t.deepEqual(result.match!.findings, []);
  t.deepEqual(keys(await breaks()), keys(before));
});

test.serial('when the same statement is imported twice, then the second import changes nothing', async (t) => {
  const before = await snapshot();
  // downloaded again: other line ends and quoting, the same lines
  const again = await statementFile(
    'day-again.csv',
    dayStatement(history)
      .replaceAll('\r\n', '\n')
      .replace(/^PROVIDER-ADJ-1,/m, '"PROVIDER-ADJ-1",'),
  );
  const result = await command('settlement:import', ['--file', again, '--date', DAY]);
  t.is(result.code, 0, result.stderr);
  t.regex(result.stdout, /already imported as statement \d+; nothing changed/);
  t.deepEqual(await snapshot(), before);
});

test.serial(
  'when the provider re-issues a day with a changed line, then it is kept aside and raised, until finance replaces the day with it',
  async (t) => {
    const corrected = await statementFile('day-corrected.csv', dayStatement(history, { o3Amount: '30.00' }));
    const conflict = await command('settlement:import', ['--file', corrected]);
    t.is(conflict.code, 1, conflict.stderr);
    t.regex(conflict.stdout, /DIFFERS from the current statement \d+ of that day; kept as statement \d+, not matched/);
    const open = await breaks();
    t.true(open.some((b) => b.category === 'settlement_statement_reissued' && b.subject === `statement:${DAY}`));
    t.true(
      open.some((b) => b.category === 'settlement_amount_mismatch'),
      'the current statement still rules',
    );

    const replaced = await command('settlement:import', ['--file', corrected, '--replace', '--as', 'finance-bob']);
    t.is(replaced.code, 1, replaced.stderr);
    t.regex(replaced.stdout, /statement \d+ replaces statement \d+/);
    t.regex(replaced.stdout, /8 breaks, 1 cleared/);
    const after = await breaks('all');
    const reissue = after.find((b) => b.category === 'settlement_statement_reissued')!;
    t.regex(reissue.resolution!, /^finance-bob: replaced statement \d+ of 2024-04-10 with \d+$/);
    t.regex(
      after.find((b) => b.category === 'settlement_amount_mismatch')!.resolution!,
      /^cleared: not observed by settlement matching of 2024-04-10$/,
    );
    const states = await system.db.databases.balance.anyFirst(sql.type(z.object({ state: z.string() }))`
    select state from settlement_statements where statement_date = ${DAY}::date order by id`);
    t.deepEqual(states, ['superseded', 'current']);
  },
);

test.serial(
  'when an operator resolves a break with a note, then matching again does not raise it again, and open breaks age',
  async (t) => {
    const missing = (await breaks()).find((b) => b.category === 'settlement_missing')!;
    const resolved = await call(system.url, 'POST', `/admin/breaks/${missing.id}/resolve`, {
      token: system.adminToken,
      body: { resolution: 'paid through the bank by hand, provider confirmed by mail' },
    });
    t.is(resolved.status, 200, resolved.text);
    const openBefore = await breaks();
    const match = await matchSettlements({
      primary: system.db.databases,
      from: DAY,
      to: NEXT_DAY,
      settleMs: 0,
      replicaWaitMs: 1_000,
      logger,
    });
    t.false(match.findings.some((f) => f.category === 'settlement_missing'));
    const openAfter = await breaks();
    t.deepEqual(keys(openAfter), keys(openBefore));
    for (const b of openAfter) {
      const earlier = openBefore.find((o) => o.id === b.id)!;
      t.is(b.seenCount, earlier.seenCount + 1, `${b.category} seen again`);
    }
    const note = (await breaks('all')).find((b) => b.id === missing.id)!;
    t.is(note.resolution, 'admin: paid through the bank by hand, provider confirmed by mail');
  },
);

test.serial(
  'when settlement-breaks runs, then finance sees every open break with its age and the ones resolved in the period',
  async (t) => {
    const report = await runReport('settlement-breaks', { from: '2020-01-01' }, system.db.databases, { timeZone: 'Asia/Tokyo' });
    t.deepEqual(report.columns, [
      'break_id',
      'state',
      'category',
      'reference',
      'order_id',
      'currency',
      'expected',
      'actual',
      'first_seen_at',
      'first_seen_day',
      'last_seen_at',
      'seen_count',
      'age_days',
      'resolved_at',
      'resolution',
    ]);
    const rows = report.rows.map((r) => [r[1], r[2], r[3]]);
    t.deepEqual(
      rows
        .filter((r) => r[0] === 'open')
        .map((r) => `${r[1]} ${r[2]}`)
        .sort(),
      [
        `settlement_currency_mismatch ${tx('o4')}`,
        `settlement_duplicated ${tx('o6')}`,
        `settlement_extra ${history.strangerReference}`,
        'settlement_extra PROVIDER-ADJ-1',
        `settlement_ledger_mismatch ${tx('o7')}`,
        `settlement_status_mismatch ${tx('o5')}`,
        `settlement_status_mismatch ${tx('o8')}`,
      ].sort(),
    );
    t.deepEqual(
      rows
        .filter((r) => r[0] === 'resolved')
        .map((r) => r[1])
        .sort(),
      ['settlement_amount_mismatch', 'settlement_missing', 'settlement_statement_reissued'],
    );
    const open = report.rows.filter((r) => r[1] === 'open');
    t.true(
      open.every((r) => r[12] === '0' && r[13] === null),
      'first seen today, not resolved',
    );
    const withoutPeriod = await runReport('settlement-breaks', {}, system.db.databases);
    t.is(withoutPeriod.rows.length, open.length, 'without --from only the open ones');
  },
);

test.serial('when a statement of today is asked from the provider, then the command refuses it: the day is not over', async (t) => {
  const today = new Date().toISOString().slice(0, 10);
  const result = await command('settlement:import', ['--date', today]);
  t.is(result.code, 2);
  t.regex(result.stderr, /PSP_BASE_URL is not set|not final before that day is over/);
});
