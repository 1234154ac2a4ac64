// `node --import tsx bench/consoleBench.ts [--orders 1000000] [--jobs 100000] [--accounts 10000] [--runs 20]`
//
// The operations console's reads at volume: on a fresh embedded PostgreSQL in a temp folder,
// migrate both databases, bulk-load N withdraw orders over 30 days with their status history
// (3 rows each), provider submissions, callbacks, status queries, the Ledger DB's hold journals
// (2 entries each), breaks, audit rows, outbox rows and M graphile-worker jobs (queued, retrying,
// failed, batch payloads); VACUUM ANALYZE; then time every query the console's screens run, through
// the same functions the routes call, RUNS times each (median, p95, max), and name those whose
// median is over --explain-over ms. Plausible data, not exact books. Numbers go in the issue notes
// and docs/console.md, never in tests.
import { createHash } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { sql } from 'slonik';
import { ensureDatabase, startEmbeddedCluster, temporaryDataDir, type EmbeddedCluster } from '../app/db/embeddedPostgres.ts';
import { migrateAll } from '../app/db/migrate.ts';
import { createDatabases, endDatabases, type Databases } from '../app/db/pools.ts';
import { listApprovals } from '../app/admin/approvalQueries.ts';
import { listBreaks } from '../app/admin/consoleBreakQueries.ts';
import { cronSchedule, findJob, listJobs } from '../app/admin/consoleJobQueries.ts';
import {
  decodeOrderCursor,
  encodeOrderCursor,
  jobsForTransaction,
  ledgerJournals,
  orderContext,
  searchOrders,
} from '../app/admin/consoleOrderQueries.ts';
import { consoleOverview, ordersPerHour, providerErrorRate, throughputPerMinute } from '../app/admin/consoleOverviewQueries.ts';
import { createManualReview } from '../app/admin/manualReview.ts';

const { values: args } = parseArgs({
  options: {
    orders: { type: 'string', default: '1000000' },
    jobs: { type: 'string', default: '100000' },
    accounts: { type: 'string', default: '10000' },
    runs: { type: 'string', default: '20' },
    'explain-over': { type: 'string', default: '50' },
  },
});
const ORDERS = Number(args.orders);
const JOBS = Number(args.jobs);
const ACCOUNTS = Number(args.accounts);
const RUNS = Number(args.runs);
const SLOW_MS = Number(args['explain-over']);
if (!Number.isInteger(ORDERS) || ORDERS < 1_000 || ORDERS > 20_000_000) throw new Error('--orders: 1000..20000000');
if (!Number.isInteger(JOBS) || JOBS < 100 || JOBS > 5_000_000) throw new Error('--jobs: 100..5000000');
if (!Number.isInteger(ACCOUNTS) || ACCOUNTS < 10 || ACCOUNTS > ORDERS) throw new Error('--accounts: 10..orders');
if (!Number.isInteger(RUNS) || RUNS < 3 || RUNS > 200) throw new Error('--runs: 3..200');

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

async function bulk(url: string, steps: ReadonlyArray<readonly [string, string]>, values: unknown[]): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    // triggers off, as for a restore; CHECK constraints still hold
    await client.query(`set session_replication_role = replica; set work_mem = '256MB'; set maintenance_work_mem = '512MB'`);
    for (const [label, text] of steps) {
      const started = performance.now();
      // the bench's own values, inlined as literals: a step that does not use every one of them
      // would leave a parameter PostgreSQL cannot type
      const result = await client.query(text.replace(/\$(\d+)/g, (_, n: string) => client.escapeLiteral(String(values[Number(n) - 1]))));
      log(`  ${label}: ${result.rowCount ?? 0} rows, ${Math.round(performance.now() - started)} ms`);
    }
    await client.query('vacuum (analyze)');
  } finally {
    await client.end();
  }
}

// every order column is a function of g: $1 anchor, $2 orders, $3 accounts; the newest hour holds
// the open ones, 0.5% of the rest are in manual review, 2.5% failed
const ORDERS_SELECT = `
  select g, g % $3::int as a, md5('acct' || (g % $3::int))::uuid as account_id, md5('order' || g)::uuid as order_id,
         md5('tx' || g)::uuid as transaction_id, 100 + g % 99900 as amount_minor,
         $1::timestamptz - interval '30 days' * (($2::int - g)::float8 / $2::int) as created_at,
         case when g > $2::int - 2000 then (array['init', 'processing', 'processing', 'manual'])[1 + g % 4]
              when g % 200 = 0 then 'manual' when g % 40 = 1 then 'failed' else 'success' end as status
    from generate_series(1, $2::int) g`;

const BALANCE_STEPS: ReadonlyArray<readonly [string, string]> = [
  [
    'accounts',
    `insert into accounts (id, user_id, currency, balance_minor, available_minor)
     select md5('acct' || a)::uuid, 'bench-' || a, 'USD', 1000000000, 1000000000 from generate_series(0, $3::int - 1) a`,
  ],
  [
    'withdraw_orders',
    `insert into withdraw_orders (id, transaction_id, user_id, account_id, to_account_id, amount_minor, currency, status,
       failure_reason, created_at, updated_at)
     select order_id, transaction_id, 'bench-' || a, account_id, 'bank-' || a, amount_minor, 'USD', status,
            case when status = 'failed' then 'provider_rejected' end, created_at, created_at + interval '30 seconds'
       from (${ORDERS_SELECT}) o`,
  ],
  [
    'withdraw_status_history',
    `insert into withdraw_status_history (order_id, from_status, to_status, actor, created_at)
     select o.order_id, h.from_status, h.to_status, h.actor, o.created_at + h.offset_s * interval '1 second'
       from (${ORDERS_SELECT}) o
      cross join lateral (values (null, 'init', 'api', 0), ('init', 'processing', 'job', 2),
                                 ('processing', o.status, 'provider', 30)) as h(from_status, to_status, actor, offset_s)
      where h.to_status = 'init' or (h.to_status = 'processing' and h.from_status = 'init' and o.status <> 'init')
         or (h.from_status = 'processing' and o.status in ('success', 'failed', 'manual'))`,
  ],
  [
    'gateway_submit_attempts',
    `insert into gateway_submit_attempts (transaction_id, result, http_status, duration_ms, created_at)
     select transaction_id, case when g % 33 = 0 then 'unknown' when g % 40 = 1 then 'rejected' else 'accepted' end,
            case when g % 33 = 0 then 503 else 202 end, 40, created_at + interval '1 second'
       from (${ORDERS_SELECT}) o where status <> 'init'`,
  ],
  [
    'gateway_status_queries',
    `insert into gateway_status_queries (transaction_id, result, created_at)
     select transaction_id, 'pending', created_at + interval '5 minutes' from (${ORDERS_SELECT}) o where g % 20 = 0`,
  ],
  [
    'gateway_inbox',
    `insert into gateway_inbox (event_id, reference, status, occurred_at, payload, signed_at, received_at, processed_at, outcome)
     select 'evt-' || g, transaction_id::text, case when status = 'failed' then 'failed' else 'paid' end, created_at, '{}'::jsonb,
            created_at, created_at + interval '20 seconds', case when g <= $2::int - 500 then created_at + interval '21 seconds' end, 'applied'
       from (${ORDERS_SELECT}) o where status in ('success', 'failed')`,
  ],
  [
    'reconciliation_breaks',
    `insert into reconciliation_breaks (category, subject, order_id, transaction_id, currency, expected, actual,
       first_seen_at, last_seen_at, resolved_at, resolution)
     select (array['callback_contradicts_final', 'ledger_balance_mismatch', 'provider_status_mismatch'])[1 + i % 3], 'order:' || md5('order' || i * 97),
            md5('order' || i * 97)::uuid, md5('tx' || i * 97)::uuid, 'USD', 'success', 'failed',
            $1::timestamptz - interval '30 days' * (i::float8 / 10000), $1::timestamptz,
            case when i % 5 <> 0 then $1::timestamptz end, case when i % 5 <> 0 then 'fixed' end
       from generate_series(1, 10000) i`,
  ],
  [
    'admin_audit_log',
    `insert into admin_audit_log (operator, action, subject, details, created_at)
     select (array['alice', 'bob', 'carol', 'admin'])[1 + i % 4], 'withdraw.resolve', 'order:' || md5('order' || i * 200)::uuid, '{}'::jsonb,
            $1::timestamptz - interval '30 days' * (i::float8 / 100000)
       from generate_series(1, 100000) i`,
  ],
  [
    'graphile_worker tasks',
    `insert into graphile_worker._private_tasks (identifier)
     values ('gateway__submit'), ('gateway__submit_batch'), ('ledger__post') on conflict do nothing`,
  ],
  [
    'outbox',
    `insert into outbox (topic, transaction_id, payload, created_at, relayed_at)
     select 'withdraw.success', md5('tx' || g)::uuid, '{}'::jsonb, $1::timestamptz - interval '1 hour' * (g::float8 / 100000),
            case when g > 5000 then $1::timestamptz end
       from generate_series(1, 100000) g`,
  ],
];

// M jobs: 60% single submissions, 30% ledger batches of 5 events, 1% submit batches of 100;
// 4% retrying, 1% failed for good, a few locked by a worker
const JOBS_SQL = `
  insert into graphile_worker._private_jobs (task_id, payload, run_at, attempts, max_attempts, last_error, created_at, locked_at, locked_by)
  select t.id,
         case when g % 100 = 0 then json_build_object('submits', (select json_agg(json_build_object('transactionId', md5('tx' || (g * 100 + k))::uuid)) from generate_series(1, 100) k))
              when g % 10 < 3 then json_build_object('events', (select json_agg(json_build_object('transactionId', md5('tx' || (g * 5 + k))::uuid, 'topic', 'withdraw.success')) from generate_series(1, 5) k))
              else json_build_object('transactionId', md5('tx' || g)::uuid) end,
         now() + interval '1 second' * (g % 600),
         case when g % 100 = 7 then 25 when g % 25 = 3 then 1 + g % 5 else 0 end, 25,
         case when g % 100 = 7 or g % 25 = 3 then 'provider said 503' end,
         now() - interval '1 hour' * (($1::int - g)::float8 / $1::int),
         case when g % 1000 = 11 then now() end, case when g % 1000 = 11 then 'bench-worker' end
    from generate_series(1, $1::int) g
    join graphile_worker._private_tasks t
      on t.identifier = case when g % 100 = 0 then 'gateway__submit_batch' when g % 10 < 3 then 'ledger__post' else 'gateway__submit' end`;

const LEDGER_STEPS: ReadonlyArray<readonly [string, string]> = [
  [
    'ledger_accounts',
    `insert into ledger_accounts (id, code, kind, currency, external_id) overriding system value
     select a + 1, 'wallet:' || md5('acct' || a)::uuid, 'user_wallet', 'USD', md5('acct' || a)::uuid from generate_series(0, $3::int - 1) a
     union all select $3::int + 1, 'in_transit:USD', 'withdrawals_in_transit', 'USD', null`,
  ],
  [
    'journal_transactions',
    `insert into journal_transactions (id, transaction_id, kind, source, created_at) overriding system value
     select g, transaction_id, 'hold', 'balance-outbox:' || g, created_at + interval '1 second' from (${ORDERS_SELECT}) o`,
  ],
  [
    'entries',
    `insert into entries (journal_id, ledger_account_id, amount_minor, currency, account_sequence, previous_balance_minor,
       current_balance_minor, hash)
     select o.g, e.account, e.amount, 'USD', o.g, 0, e.amount, decode(md5(o.g || ':' || e.account), 'hex')
       from (${ORDERS_SELECT}) o
      cross join lateral (values (o.a + 1, o.amount_minor), ($3::int + 1, -o.amount_minor)) as e(account, amount)`,
  ],
];

type Timing = { label: string; ms: number[]; rows: number; explain?: () => Promise<string> };

async function time(label: string, run: () => Promise<unknown>): Promise<Timing> {
  const ms: number[] = [];
  let rows = 0;
  await run(); // warm the cache and the plan once
  for (let i = 0; i < RUNS; i += 1) {
    const started = performance.now();
    const result = await run();
    ms.push(performance.now() - started);
    rows = Array.isArray(result) ? result.length : result === null || result === undefined ? 0 : 1;
  }
  return { label, ms: ms.sort((a, b) => a - b), rows };
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;

async function load(urls: { balanceUrl: string; ledgerUrl: string }, anchor: string) {
  log(`loading ${ORDERS} orders, ${JOBS} jobs, ${ACCOUNTS} accounts`);
  log('balance:');
  await bulk(
    urls.balanceUrl,
    [...BALANCE_STEPS, ['graphile_worker jobs', JOBS_SQL.replaceAll('$1', '$4')]],
    [anchor, ORDERS, ACCOUNTS, JOBS],
  );
  log('ledger:');
  await bulk(urls.ledgerUrl, LEDGER_STEPS, [anchor, ORDERS, ACCOUNTS]);
}

async function measure(databases: Databases): Promise<Timing[]> {
  const db = databases.balance;
  const review = createManualReview({ db, psp: null });
  const one = async (query: ReturnType<typeof sql.unsafe>) => String(await db.oneFirst(query));
  const someOrder = await one(
    sql.unsafe`select id::text from withdraw_orders where status = 'success' order by created_at desc offset 5000 limit 1`,
  );
  const order = (await review.get(someOrder))!;
  const user = 'bench-42';
  const page10 = await (async () => {
    let cursor = null;
    for (let i = 0; i < 10; i += 1) {
      const rows = await searchOrders(db, { q: null, status: null, cursor, limit: 51 });
      cursor = decodeOrderCursor(encodeOrderCursor(rows[49]!));
    }
    return cursor;
  })();
  const deepJob = await one(sql.unsafe`select (max(id) - 90000)::text from graphile_worker._private_jobs`);
  const aJob = await one(sql.unsafe`select id::text from graphile_worker._private_jobs where payload::text like '%events%' limit 1`);
  const search = (
    label: string,
    q: string | null,
    status: 'failed' | 'manual' | null,
    cursor = null as ReturnType<typeof decodeOrderCursor>,
  ) => time(label, () => searchOrders(db, { q, status, cursor, limit: 51 }));
  return [
    await time('overview (all of it, one screen refresh)', () => consoleOverview(databases, { workerStaleAfterMs: 30_000 })),
    await time('  orders per hour, 24 h', () => ordersPerHour(db)),
    await time('  throughput per minute, 1 h', () => throughputPerMinute(db)),
    await time('  provider error rate', () => providerErrorRate(db)),
    await search('orders: newest, no filter', null, null),
    await search('orders: status failed', null, 'failed'),
    await search('orders: status manual', null, 'manual'),
    await search('orders: by user id', user, null),
    await search('orders: by account id', md5Uuid('acct42'), null),
    await search('orders: by transaction id', order.transactionId, null),
    await search('orders: 11th page (keyset)', null, null, page10),
    await time('order page: order + evidence', () => review.get(order.orderId)),
    await time('order page: account, hold, breaks, audit, jobs', () => orderContext(db, order)),
    await time('  of which: jobs carrying its transaction', () => jobsForTransaction(db, order.transactionId)),
    await time('order page: Ledger DB journals', () => ledgerJournals(databases.ledger, order.transactionId)),
    await time('manual review queue (25, evidence)', () => review.list('manual', 25)),
    await time('jobs: newest, no filter', () => listJobs(db, { task: null, state: null, beforeId: null, limit: 51 })),
    await time('jobs: failed', () => listJobs(db, { task: null, state: 'failed', beforeId: null, limit: 51 })),
    await time('jobs: ledger__post retrying', () => listJobs(db, { task: 'ledger__post', state: 'retrying', beforeId: null, limit: 51 })),
    await time('jobs: page 90,000 jobs deep', () => listJobs(db, { task: null, state: null, beforeId: deepJob, limit: 51 })),
    await time('jobs: one job, whole payload', () => findJob(db, aJob)),
    await time('cron schedule', () => cronSchedule(db, Date.now())),
    await time('breaks: open, oldest first', () => listBreaks(db, { open: true, category: null, age: null, cursor: null, limit: 51 })),
    await time('breaks: open, one category, >7d', () =>
      listBreaks(db, { open: true, category: 'ledger_balance_mismatch', age: '>7d', cursor: null, limit: 51 }),
    ),
    await time('breaks: resolved, newest first', () => listBreaks(db, { open: false, category: null, age: null, cursor: null, limit: 51 })),
    await time('approvals: pending', () => listApprovals(db, { state: 'pending', beforeId: null, limit: 51 })),
    await time('audit: newest', () => db.any(sql.unsafe`select * from admin_audit_log order by id desc limit 51`)),
    await time('audit: one operator', () =>
      db.any(sql.unsafe`select * from admin_audit_log where operator = 'bob' order by id desc limit 51`),
    ),
    await time('provider calls: unknown, newest', () =>
      db.any(sql.unsafe`select a.*, o.id from gateway_submit_attempts a left join withdraw_orders o on o.transaction_id = a.transaction_id
                         where a.result = 'unknown' order by a.id desc limit 51`),
    ),
  ];
}

function md5Uuid(text: string): string {
  const hex = createHash('md5').update(text).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The run as JSON under bench/results/ (console-<time>.json), beside the other benchmarks' results. */
async function writeResults(loadedS: number, timings: Timing[]): Promise<void> {
  const dir = path.join(import.meta.dirname, 'results');
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, `console-${new Date().toISOString().replaceAll(':', '-')}.json`);
  const queries = timings.map((t) => ({
    query: t.label.trim(),
    medianMs: pct(t.ms, 0.5),
    p95Ms: pct(t.ms, 0.95),
    maxMs: t.ms.at(-1),
    rows: t.rows,
  }));
  const setup = { orders: ORDERS, jobs: JOBS, accounts: ACCOUNTS, runs: RUNS, cpus: os.cpus().length, node: process.version };
  await writeFile(
    file,
    `${JSON.stringify({ bench: 'console', at: new Date().toISOString(), setup, loadSeconds: loadedS, queries }, null, 2)}\n`,
  );
  log(`results: ${path.relative(process.cwd(), file)}`);
}

async function main() {
  const started = performance.now();
  const dataDir = await temporaryDataDir('withdraw-console-bench-');
  let cluster: EmbeddedCluster | null = null;
  let databases: Databases | null = null;
  try {
    cluster = await startEmbeddedCluster({
      dataDir,
      port: await freePort(),
      persistent: false,
      durable: false,
      log: (line) => {
        if (/FATAL|PANIC/.test(line)) log(`postgres: ${line}`);
      },
    });
    const urls = { balanceUrl: cluster.url('console_bench_balance'), ledgerUrl: cluster.url('console_bench_ledger') };
    await ensureDatabase(cluster.url('postgres'), 'console_bench_balance');
    await ensureDatabase(cluster.url('postgres'), 'console_bench_ledger');
    await migrateAll(urls);
    await load(urls, new Date().toISOString());
    const loadedS = Math.round((performance.now() - started) / 1000);
    databases = await createDatabases(urls, {
      poolSizeMax: 4,
      statementTimeoutMs: 60_000,
      applicationName: 'console-bench',
      ledgerRole: null,
    });
    const timings = await measure(databases);
    const out = (line = '') => process.stdout.write(`${line}\n`);
    out(
      `console bench: ${ORDERS} orders, ${JOBS} jobs, ${ACCOUNTS} accounts; ${os.cpus().length} cpus, node ${process.version}; load ${loadedS} s; ${RUNS} runs each`,
    );
    const width = Math.max(...timings.map((t) => t.label.length));
    out(`${'query'.padEnd(width)}  ${'median'.padStart(9)}${'p95'.padStart(9)}${'max'.padStart(9)}  rows`);
    for (const t of timings) {
      const f = (ms: number) => `${ms.toFixed(1)} ms`.padStart(9);
      out(`${t.label.padEnd(width)}  ${f(pct(t.ms, 0.5))}${f(pct(t.ms, 0.95))}${f(t.ms.at(-1)!)}  ${t.rows}`);
    }
    const slow = timings.filter((t) => pct(t.ms, 0.5) > SLOW_MS);
    out(
      slow.length
        ? `\nover ${SLOW_MS} ms (median): ${slow.map((t) => t.label.trim()).join('; ')}`
        : `\nno query's median is over ${SLOW_MS} ms`,
    );
    await writeResults(loadedS, timings);
  } finally {
    if (databases) await endDatabases(databases);
    await cluster?.stop();
    await rm(path.dirname(dataDir), { recursive: true, force: true });
  }
}

main().catch((error) => {
  log(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exitCode = 1;
});
