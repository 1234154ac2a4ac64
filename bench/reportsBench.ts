// `node --import tsx bench/reportsBench.ts [--orders 1000000] [--accounts 10000] [--runs 3] [--explain-over 1000]`
//
// The finance reports (sql/reports/) at volume: on a fresh embedded PostgreSQL in a temp folder,
// migrate both databases, bulk-load N withdraw orders over 90 days across the accounts and the four
// currencies, with a matching ledger (deposit, hold, settle or reverse per order: about 4 entries
// per order), breaks and outbox rows; VACUUM ANALYZE (what autovacuum does to insert-mostly
// tables), close the ledger's daily checkpoints (as the ledger__checkpoint job does), import a
// provider statement for each of the last 31 days (one paid line per paid order, a fee each); then
// time each report through runReport as `npm run report` runs it (the largest ones streamed as CSV
// to a counting sink, as `--csv` does), and print EXPLAIN (ANALYZE, BUFFERS) of any report slower than 1 s. The data is plausible, not exact: balances
// satisfy I1 and the ledger balances per journal, but status history, reservations and idempotency
// keys are not generated (no report reads them). Numbers go in the issue notes, never in tests.
//
// `--reuse DIR` times the reports on a history `npm run bench:history -- --data D --generate-only`
// kept (DIR = D/orders-N): it migrates it, imports the statements of its last 31 days and builds the
// daily-withdrawals rollup if not done yet, then times; the history is left as it was found
// otherwise. `--lock FILE`: the setup holds FILE shared, the timings exclusive. `--only a,b`: only
// those reports. `--reports-dir DIR`: the report files from DIR (an older copy of sql/reports, to
// time a report before and after a change on the same data).
import { readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { sql } from 'slonik';
import { z } from 'zod';
import { ensureDatabase, startEmbeddedCluster, temporaryDataDir, type EmbeddedCluster } from '../app/db/embeddedPostgres.ts';
import { migrateAll } from '../app/db/migrate.ts';
import { runDailyFold } from '../reconcile/dailyRollup.ts';
import { withLock } from './heavyLock.ts';
import { createDatabases, endDatabases, type Databases } from '../app/db/pools.ts';
import {
  csvRecord,
  executeReport,
  explainReport,
  loadReport,
  streamReport,
  validateReportParams,
  type ReportOptions,
  type ReportParamsInput,
} from '../reconcile/reports.ts';

const { values: args } = parseArgs({
  options: {
    orders: { type: 'string', default: '1000000' },
    accounts: { type: 'string', default: '10000' },
    runs: { type: 'string', default: '3' },
    'explain-over': { type: 'string', default: '1000' },
    reuse: { type: 'string' },
    lock: { type: 'string' },
    only: { type: 'string' },
    'reports-dir': { type: 'string' },
  },
});
const ONLY = args.only ? new Set(args.only.split(',')) : null;
const REPORTS_FROM = args['reports-dir'] ? path.resolve(args['reports-dir']) : undefined;
const ORDERS = Number(args.orders);
const ACCOUNTS = Number(args.accounts);
const RUNS = Number(args.runs);
if (!Number.isInteger(ORDERS) || ORDERS < 1_000 || ORDERS > 50_000_000) throw new Error('--orders: 1000..50000000');
if (!Number.isInteger(ACCOUNTS) || ACCOUNTS < 4 || ACCOUNTS > ORDERS) throw new Error('--accounts: 4..orders');
if (!Number.isInteger(RUNS) || RUNS < 1 || RUNS > 20) throw new Error('--runs: 1..20');
/** EXPLAIN is printed for every report whose slowest run took longer than this */
const SLOW_MS = Number(args['explain-over']);
if (!Number.isInteger(SLOW_MS) || SLOW_MS < 0) throw new Error('--explain-over: milliseconds >= 0');
const BREAKS = 5_000;

const log = (message: string) => process.stderr.write(`${message}\n`);

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

// The same orders in both databases: every column is a function of g. $1 anchor (now), $2 orders,
// $3 accounts. The newest 6 hours hold most open orders; 0.2% of older ones sit in manual review.
const ORDERS_SELECT = `
  select s.g, s.a, md5('acct' || s.a)::uuid as account_id, md5('order' || s.g)::uuid as order_id,
         md5('tx' || s.g)::uuid as transaction_id, (array['USD', 'EUR', 'GBP', 'JPY'])[1 + s.a % 4] as currency,
         100 + (hashint4(s.g)::bigint + 2147483648) % 99900 as amount_minor, s.created_at,
         case when s.age < interval '6 hours' and s.r < 600
                then case when s.r < 150 then 'init' when s.r < 550 then 'processing' else 'manual' end
              when s.r < 2 then 'manual'
              when s.r < 70 then 'failed'
              else 'success' end as status
    from (select g, g % $3::int as a,
                 $1::timestamptz - interval '90 days' * (($2::int - g)::float8 / $2::int) as created_at,
                 interval '90 days' * (($2::int - g)::float8 / $2::int) as age,
                 (hashint4(g * 31 + 7)::bigint + 2147483648) % 1000 as r
            from generate_series(1, $2::int) g) s`;

async function step(client: pg.Client, label: string, text: string, values: unknown[] = []): Promise<void> {
  const started = performance.now();
  const result = await client.query(text, values);
  log(`  ${label}: ${result.rowCount ?? 0} rows, ${Math.round(performance.now() - started)} ms`);
}

/** Bulk load: triggers off (session_replication_role = replica, as for a restore); CHECKs still hold. */
async function bulkSession(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`set session_replication_role = replica; set work_mem = '512MB'; set maintenance_work_mem = '1GB'`);
  return client;
}

async function loadBalance(url: string, anchor: string): Promise<void> {
  const client = await bulkSession(url);
  try {
    await step(
      client,
      'accounts',
      `
      insert into accounts (id, user_id, currency, created_at)
      select md5('acct' || a)::uuid, 'bench-' || a, (array['USD', 'EUR', 'GBP', 'JPY'])[1 + a % 4], $1::timestamptz - interval '120 days'
        from generate_series(0, $2::int - 1) a`,
      [anchor, ACCOUNTS],
    );
    await step(
      client,
      'withdraw_orders',
      `
      insert into withdraw_orders (id, transaction_id, user_id, account_id, to_account_id, amount_minor, currency, status,
                                   failure_reason, created_at, updated_at)
      select o.order_id, o.transaction_id, 'bench-' || o.a, o.account_id, 'bank-' || o.a, o.amount_minor, o.currency, o.status,
             case when o.status = 'failed' then 'provider_rejected' end, o.created_at,
             case when o.status in ('success', 'failed') then o.created_at + interval '30 seconds' else o.created_at end
        from (${ORDERS_SELECT}) o`,
      [anchor, ORDERS, ACCOUNTS],
    );
    // one deposit per account covering all its orders; I1 and I2 hold
    await step(
      client,
      'credits and balances',
      `
      with sums as (
        select o.account_id, sum(o.amount_minor) + 1000000 as credited,
               coalesce(sum(o.amount_minor) filter (where o.status = 'success'), 0) as captured,
               coalesce(sum(o.amount_minor) filter (where o.status in ('init', 'processing', 'manual')), 0) as reserved
          from withdraw_orders o group by o.account_id
      ), credited as (
        insert into credits (transaction_id, account_id, amount_minor, currency, actor, created_at)
        select md5('deposit' || s.account_id::text)::uuid, s.account_id, s.credited, a.currency, 'bench', $1::timestamptz - interval '100 days'
          from sums s join accounts a on a.id = s.account_id
        returning account_id
      )
      update accounts a
         set balance_minor = s.credited - s.captured, reserved_minor = s.reserved,
             available_minor = s.credited - s.captured - s.reserved
        from sums s
       where a.id = s.account_id and s.account_id in (select account_id from credited)`,
      [anchor],
    );
    await step(
      client,
      'reconciliation_breaks',
      `
      insert into reconciliation_breaks (category, subject, currency, expected, actual, first_seen_at, last_seen_at, resolved_at, resolution)
      select (array['callback_unknown_reference', 'callback_contradicts_final', 'balance_mismatch', 'ledger_mismatch'])[1 + i % 4],
             'bench:' || i, 'USD', 'x', 'y', $1::timestamptz - interval '30 days' * (i::float8 / $2::int), $1::timestamptz,
             case when i % 5 <> 0 then $1::timestamptz end, case when i % 5 <> 0 then 'fixed' end
        from generate_series(1, $2::int) i`,
      [anchor, BREAKS],
    );
    await step(
      client,
      'outbox',
      `
      insert into outbox (topic, transaction_id, payload, created_at, relayed_at)
      select 'withdraw.success', md5('tx' || g)::uuid, jsonb_build_object('n', g),
             $1::timestamptz - interval '72 hours' * (1 - g::float8 / 100500),
             case when g <= 100000 then $1::timestamptz - interval '72 hours' * (1 - g::float8 / 100500) + interval '1 second' end
        from generate_series(1, 100500) g`,
      [anchor],
    );
  } finally {
    await client.end();
  }
}

async function loadLedger(url: string, anchor: string): Promise<void> {
  const client = await bulkSession(url);
  // platform account ids: accounts + 1 + currency index * 3 + (0 in transit, 1 provider clearing, 2 funding)
  const platform = (kindIndex: number) => `$1::int + 1 + (j.a % 4) * 3 + ${kindIndex}`;
  try {
    await step(client, 'staging orders', `create unlogged table bench_orders as ${ORDERS_SELECT}`, [anchor, ORDERS, ACCOUNTS]);
    await step(
      client,
      'ledger_accounts',
      `
      insert into ledger_accounts (id, code, kind, currency, external_id, created_at) overriding system value
      select a + 1, 'wallet:' || md5('acct' || a)::uuid, 'user_wallet', (array['USD', 'EUR', 'GBP', 'JPY'])[1 + a % 4],
             md5('acct' || a)::uuid, $1::timestamptz - interval '120 days'
        from generate_series(0, $2::int - 1) a
      union all
      select $2::int + 1 + c * 3 + p.k, p.prefix || cur.code, p.kind, cur.code, null, $1::timestamptz - interval '120 days'
        from generate_series(0, 3) c
       cross join lateral (select (array['USD', 'EUR', 'GBP', 'JPY'])[1 + c] as code) cur
       cross join (values (0, 'in_transit:', 'withdrawals_in_transit'), (1, 'provider_clearing:', 'provider_clearing'),
                          (2, 'funding:', 'funding')) as p(k, prefix, kind)`,
      [anchor, ACCOUNTS],
    );
    await step(
      client,
      'staging journals',
      `
      create unlogged table bench_journals as
      select d.a + 1 as id, md5('deposit' || md5('acct' || d.a)::uuid::text)::uuid as transaction_id, 'deposit'::text as kind,
             d.a, d.credited as amount, $1::timestamptz - interval '100 days' as at, 'bench-credit:' || d.a as source
        from (select o.a, sum(o.amount_minor) + 1000000 as credited from bench_orders o group by o.a) d
      union all
      select $2::int + 2 * o.g - 1, o.transaction_id, 'hold', o.a, o.amount_minor, o.created_at + interval '1 second',
             'balance-outbox:' || (3 * o.g)
        from bench_orders o
      union all
      select $2::int + 2 * o.g, o.transaction_id, case when o.status = 'success' then 'settle' else 'reverse' end, o.a,
             o.amount_minor, o.created_at + interval '30 seconds', 'balance-outbox:' || (3 * o.g + 1)
        from bench_orders o where o.status in ('success', 'failed')`,
      [anchor, ACCOUNTS],
    );
    await step(
      client,
      'journal_transactions',
      `
      insert into journal_transactions (id, transaction_id, kind, source, created_at) overriding system value
      select id, transaction_id, kind, source, at from bench_journals order by at, id`,
    );
    // debit first, then credit, as ledger_post writes a journal's entries
    await step(
      client,
      'staging postings',
      `
      create unlogged table bench_postings as
      select j.id as journal_id, x.side, x.account_id, x.amount, (array['USD', 'EUR', 'GBP', 'JPY'])[1 + j.a % 4] as currency, j.at
        from bench_journals j
       cross join lateral (values
         (0, case j.kind when 'deposit' then ${platform(2)} when 'hold' then j.a + 1 else ${platform(0)} end, j.amount),
         (1, case j.kind when 'deposit' then j.a + 1 when 'hold' then ${platform(0)} when 'settle' then ${platform(1)} else j.a + 1 end,
          -j.amount)) as x(side, account_id, amount)`,
      [ACCOUNTS],
    );
    await step(
      client,
      'entries',
      `
      insert into entries (journal_id, ledger_account_id, amount_minor, currency, account_sequence, previous_balance_minor,
                           current_balance_minor, previous_hash, hash, created_at)
      select p.journal_id, p.account_id, p.amount, p.currency, p.seq, p.running - p.amount, p.running,
             case when p.seq > 1 then sha256(int8send(p.account_id) || int8send(p.seq - 1)) end,
             sha256(int8send(p.account_id) || int8send(p.seq)), p.at
        from (select b.*, row_number() over w as seq, sum(b.amount) over w as running
                from bench_postings b window w as (partition by b.account_id order by b.at, b.journal_id)) p
       order by p.at, p.journal_id, p.side`,
    );
    await step(
      client,
      'account balances',
      `
      update ledger_accounts a set balance_minor = s.balance, entry_count = s.n
        from (select ledger_account_id, sum(amount_minor) as balance, count(*) as n from entries group by 1) s
       where a.id = s.ledger_account_id`,
    );
    await step(
      client,
      'outbox',
      `
      insert into outbox (topic, transaction_id, payload, created_at, relayed_at)
      select 'ledger.held', md5('tx' || g)::uuid, jsonb_build_object('n', g),
             $1::timestamptz - interval '72 hours' * (1 - g::float8 / 50100),
             case when g <= 50000 then $1::timestamptz - interval '72 hours' * (1 - g::float8 / 50100) + interval '1 second' end
        from generate_series(1, 50100) g`,
      [anchor],
    );
    await step(
      client,
      'identity sequences',
      `
      select setval(pg_get_serial_sequence(t, 'id'), m)
        from (values ('ledger_accounts', (select max(id) from ledger_accounts)), ('journal_transactions', (select max(id) from journal_transactions)),
                     ('entries', (select max(id) from entries))) as v(t, m)`,
    );
    await client.query('drop table bench_orders, bench_journals, bench_postings');
  } finally {
    await client.end();
  }
}

async function vacuumAnalyze(url: string, label: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const started = performance.now();
    await client.query('vacuum (analyze)');
    log(`  vacuum analyze ${label}: ${Math.round(performance.now() - started)} ms`);
  } finally {
    await client.end();
  }
}

async function sizes(url: string, tables: string[]): Promise<string[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const lines: string[] = [];
    for (const table of tables) {
      const { rows } = await client.query<{ n: string; total: string; heap: string }>(
        `select (select count(*) from ${client.escapeIdentifier(table)})::text as n,
                pg_size_pretty(pg_total_relation_size($1::regclass)) as total, pg_size_pretty(pg_relation_size($1::regclass)) as heap`,
        [table],
      );
      lines.push(`${table}: ${rows[0]!.n} rows, ${rows[0]!.heap} heap, ${rows[0]!.total} with indexes`);
    }
    return lines;
  } finally {
    await client.end();
  }
}

/** The provider's statements of the last `days` days: a paid line 25 s after each paid order, a fee of 25 minor units. */
async function loadStatements(url: string, anchor: string, days: number): Promise<void> {
  const client = await bulkSession(url);
  try {
    await step(
      client,
      'settlement_statements',
      `
      insert into settlement_statements (statement_date, source, source_name, content_sha256, line_count, state, imported_by)
      select d::date, 'provider', 'bench', encode(sha256(convert_to(d::text, 'UTF8')), 'hex'), 0, 'current', 'bench'
        from generate_series((($1::timestamptz at time zone 'UTC')::date - $2::int), (($1::timestamptz at time zone 'UTC')::date - 1), interval '1 day') d`,
      [anchor, days],
    );
    await step(
      client,
      'settlement_lines',
      `
      insert into settlement_lines (statement_id, line_number, reference, amount, amount_minor, currency, status, settled_at, fee, fee_minor)
      select s.id, row_number() over (partition by s.id order by o.created_at, o.id), o.transaction_id::text,
             format_minor(o.amount_minor, o.currency), o.amount_minor, o.currency, 'paid', o.created_at + interval '25 seconds',
             format_minor(25, o.currency), 25
        from withdraw_orders o
        join settlement_statements s on s.statement_date = ((o.created_at + interval '25 seconds') at time zone 'UTC')::date
       where o.status = 'success'`,
    );
    await step(
      client,
      'line counts',
      `update settlement_statements s set line_count = (select count(*) from settlement_lines l where l.statement_id = s.id)`,
    );
  } finally {
    await client.end();
  }
}

/** Closes every ledger day that is over, oldest first, as the ledger__checkpoint job does. */
async function closeLedgerDays(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const started = performance.now();
    const { rows } = await client.query<{ first: string | null }>(
      `select (min(created_at) at time zone 'UTC')::date::text as first from entries`,
    );
    let closed = 0;
    for (let day = rows[0]?.first ?? null; day !== null; ) {
      const result = await client.query<{ outcome: string }>('select outcome from ledger_close_day($1::date, now(), 0)', [day]);
      if (result.rows[0]?.outcome !== 'closed') break;
      closed += 1;
      day = new Date(Date.parse(`${day}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
    }
    log(`  ledger checkpoints: ${closed} days closed, ${Math.round(performance.now() - started)} ms`);
  } finally {
    await client.end();
  }
}

type Case = Readonly<{ report: string; input: ReportParamsInput; options?: ReportOptions; stream?: boolean }>;

async function timeReports(databases: Databases, cases: readonly Case[]) {
  const results: Array<{ label: string; ms: number[]; rows: number; slow: boolean; item: Case }> = [];
  for (const item of cases) {
    const ms: number[] = [];
    let rows = 0;
    for (let run = 0; run < RUNS; run += 1) {
      const started = performance.now();
      if (item.stream) {
        // as `--csv` does: every row through the cursor and the CSV writer, nothing kept
        const report = loadReport(item.report, REPORTS_FROM);
        let bytes = 0;
        const streamed = await streamReport(report, validateReportParams(report, item.input), databases, item.options ?? {}, {
          columns: (columns) => {
            bytes += csvRecord(columns).length;
          },
          rows: (batch) => {
            for (const row of batch) bytes += csvRecord(row).length;
          },
        });
        rows = streamed.rowCount;
        if (bytes === 0) throw new Error('no CSV written');
      } else {
        const report = loadReport(item.report, REPORTS_FROM);
        rows = (await executeReport(report, validateReportParams(report, item.input), databases, item.options ?? {})).rows.length;
      }
      ms.push(Math.round(performance.now() - started));
    }
    const params = [
      ...Object.entries(item.input).map(([name, value]) => `--${name} ${value}`),
      ...(item.options?.timeZone ? [`--tz ${item.options.timeZone}`] : []),
      ...(item.stream ? ['--csv'] : []),
    ].join(' ');
    results.push({ label: `${item.report} ${params}`.trim(), ms, rows, slow: Math.max(...ms) > SLOW_MS, item });
  }
  return results;
}

/** A fresh cluster in a temp folder, loaded with ORDERS orders (the bench's own data). */
async function loadFresh(): Promise<{ cluster: EmbeddedCluster; anchor: string; busyUser: string; cleanup: string }> {
  // a folder the postgres user can reach when this runs as root
  const dataDir = await temporaryDataDir('withdraw-reports-bench-');
  const cluster = await startEmbeddedCluster({
    dataDir,
    port: await freePort(),
    persistent: false,
    durable: false,
    log: (line) => {
      if (/FATAL|PANIC/.test(line)) log(`postgres: ${line}`);
    },
  });
  const urls = clusterUrls(cluster);
  await ensureDatabase(cluster.url('postgres'), urls.balanceName);
  await ensureDatabase(cluster.url('postgres'), urls.ledgerName);
  await migrateAll(urls);
  const anchor = new Date().toISOString();
  log(`loading ${ORDERS} orders over 90 days, ${ACCOUNTS} accounts, 4 currencies (embedded PostgreSQL in ${path.dirname(dataDir)})`);
  log('balance:');
  await loadBalance(urls.balanceUrl, anchor);
  log('ledger:');
  await loadLedger(urls.ledgerUrl, anchor);
  await loadStatements(urls.balanceUrl, anchor, 31);
  await closeLedgerDays(urls.ledgerUrl);
  await vacuumAnalyze(urls.balanceUrl, 'balance');
  await vacuumAnalyze(urls.ledgerUrl, 'ledger');
  return { cluster, anchor, busyUser: 'bench-0', cleanup: path.dirname(dataDir) };
}

/** A history bench:history kept (DIR/pg, DIR/plan.json), with this bench's statements added once. */
async function openKept(dir: string): Promise<{ cluster: EmbeddedCluster; anchor: string; busyUser: string; orders: number }> {
  const plan = JSON.parse(await readFile(path.join(dir, 'plan.json'), 'utf8')) as { orders: number; anchor: string };
  const cluster = await startEmbeddedCluster({
    dataDir: path.join(dir, 'pg'),
    port: await freePort(),
    persistent: true,
    durable: true,
    log: (line) => {
      if (/FATAL|PANIC/.test(line)) log(`postgres: ${line}`);
    },
  });
  await withLock(args.lock, 'shared', async () => {
    const urls = clusterUrls(cluster);
    await migrateAll(urls);
    const client = new pg.Client({ connectionString: urls.balanceUrl });
    await client.connect();
    const imported = await client.query('select 1 from settlement_statements limit 1');
    await client.end();
    if (imported.rowCount === 0) {
      await loadStatements(urls.balanceUrl, plan.anchor, 31);
      await vacuumAnalyze(urls.balanceUrl, 'balance');
    }
  });
  return { cluster, anchor: plan.anchor, busyUser: 'hist-0', orders: plan.orders };
}

function clusterUrls(cluster: EmbeddedCluster) {
  const [balanceName, ledgerName] = args.reuse ? ['history_balance', 'history_ledger'] : ['reports_bench_balance', 'reports_bench_ledger'];
  return { balanceName, ledgerName, balanceUrl: cluster.url(balanceName), ledgerUrl: cluster.url(ledgerName) };
}

async function main() {
  const started = performance.now();
  let cluster: EmbeddedCluster | null = null;
  let databases: Databases | null = null;
  let cleanup: string | null = null;
  try {
    let anchor: string;
    let busyUser: string;
    let orders = ORDERS;
    if (args.reuse) {
      const kept = await openKept(path.resolve(args.reuse));
      ({ cluster, anchor, busyUser, orders } = kept);
    } else {
      const fresh = await loadFresh();
      ({ cluster, anchor, busyUser } = fresh);
      cleanup = fresh.cleanup;
    }
    const urls = clusterUrls(cluster);
    const loadedMs = performance.now() - started;
    databases = await createDatabases(urls, {
      poolSizeMax: 2,
      statementTimeoutMs: 600_000,
      applicationName: 'reports-bench',
      ledgerRole: null,
    });
    // the daily-withdrawals rollup, as the reports__daily_fold job builds it (bulk loads bypass its trigger)
    const fold = await withLock(args.lock, 'shared', () => runDailyFold({ pool: databases!.balance }));
    if (fold.rebuilt) log(`  daily-withdrawals rollup built: ${fold.rebuilt.buckets} buckets, ${fold.rebuilt.orders} orders`);
    const tableSizes = await withLock(args.lock, 'shared', async () => [
      ...(await sizes(urls.balanceUrl, [
        'withdraw_orders',
        'settlement_lines',
        'withdraw_daily_rollup',
        'reconciliation_breaks',
        'outbox',
      ])),
      ...(await sizes(urls.ledgerUrl, ['entries', 'journal_transactions', 'ledger_accounts'])),
    ]);
    const days = (n: number) => new Date(Date.parse(anchor) - n * 86_400_000).toISOString();
    /** the date (YYYY-MM-DD, a midnight in the report's zone) n days before the anchor's UTC day */
    const dayStart = (n: number) => new Date(Date.parse(`${anchor.slice(0, 10)}T00:00:00Z`) - n * 86_400_000).toISOString().slice(0, 10);
    // every account has orders / accounts orders (g % accounts); the first account's statement is as long as any
    const busyAccount = await databases.balance.oneFirst(sql.type(z.object({ id: z.string() }))`
      select id::text as id from accounts where user_id = ${busyUser}`);
    const all: Case[] = [
      { report: 'daily-withdrawals', input: {} },
      { report: 'daily-withdrawals', input: { from: days(30), to: anchor, currency: 'USD' } },
      { report: 'trial-balance', input: {} },
      { report: 'trial-balance', input: { to: days(45) } },
      { report: 'in-flight-aging', input: {} },
      { report: 'account-statement', input: { account: busyAccount } },
      { report: 'account-statement', input: { account: busyAccount, from: days(30) } },
      { report: 'open-breaks', input: {} },
      { report: 'outbox-lag', input: {} },
      // month end: the last full UTC day, and the 30 days before it, in Tokyo
      { report: 'daily-withdrawals', input: { from: dayStart(31), to: dayStart(1) }, options: { timeZone: 'Asia/Tokyo' } },
      { report: 'balance-summary', input: { from: dayStart(31), to: dayStart(1) }, options: { timeZone: 'Asia/Tokyo' } },
      { report: 'balance-summary', input: { from: days(45), to: anchor } },
      { report: 'settlement-breaks', input: { from: dayStart(31) } },
      { report: 'payouts', input: { from: dayStart(2), to: dayStart(1), currency: 'USD' }, stream: true },
      { report: 'payouts', input: { from: dayStart(2), to: dayStart(1) }, stream: true },
      { report: 'payouts', input: { from: dayStart(31), to: dayStart(1) }, options: { timeZone: 'Asia/Tokyo' }, stream: true },
    ];
    const cases = all.filter((c) => ONLY === null || ONLY.has(c.report));
    const db = databases;
    const out = (line = '') => process.stdout.write(`${line}\n`);
    await withLock(args.lock, 'exclusive', async () => {
      const timings = await timeReports(db, cases);
      out(
        `reports bench: ${orders} orders${args.reuse ? ` (bench:history ${args.reuse})` : `, ${ACCOUNTS} accounts`}; ${os.cpus().length} cpus, node ${process.version}; load ${Math.round(loadedMs / 1000)} s${REPORTS_FROM ? `; reports from ${REPORTS_FROM}` : ''}`,
      );
      for (const line of tableSizes) out(`  ${line}`);
      out();
      const width = Math.max(...timings.map((t) => t.label.length));
      out(`${'report'.padEnd(width)}  ${Array.from({ length: RUNS }, (_, i) => `run ${i + 1}`.padStart(8)).join('')}  rows`);
      for (const t of timings) out(`${t.label.padEnd(width)}  ${t.ms.map((ms) => `${ms} ms`.padStart(8)).join('')}  ${t.rows}`);
      for (const t of timings.filter((timing) => timing.slow)) {
        const report = loadReport(t.item.report, REPORTS_FROM);
        out(`\nEXPLAIN (ANALYZE, BUFFERS) ${t.label} (slower than ${SLOW_MS} ms):`);
        for (const { database, plan } of await explainReport(
          report,
          validateReportParams(report, t.item.input),
          db,
          t.item.options ?? {},
        )) {
          out(`-- ${database}\n${plan}`);
        }
      }
      if (!timings.some((t) => t.slow)) out(`\nno report took more than ${SLOW_MS} ms`);
    });
  } finally {
    if (databases) await endDatabases(databases);
    await cluster?.stop();
    if (cleanup) await rm(cleanup, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    log(`reports bench failed: ${error instanceof Error ? error.stack : String(error)}`);
    process.exit(1);
  },
);
