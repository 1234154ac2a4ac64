// History for `npm run bench:history`: N withdrawals in the real tables of both databases, made with
// set-based SQL (generate_series over one deterministic definition of the orders, so both
// databases agree without copying), triggers off as for a restore (session_replication_role =
// replica; CHECK constraints still hold), secondary indexes dropped during the load and built
// again after it (their definitions read back from the catalogue, so they are exactly the
// migrations'). The ledger is consistent: every journal balances, every entry carries its account's
// running balance and a SHA-256 chained to the previous entry (ledger_entry_hash, through a window
// aggregate), the projections match, and the daily checkpoints are closed by the real job.
//
// The shape of history: orders arrive at a steady RATE_PER_DAY, so N orders span N / RATE days (1M:
// 100 days; 10M: 1,000 days): what a run of each job sees in its window is the same at every size,
// only history is longer. 6.8% fail, 1,000 are in manual (spread over all of history), the 1,000
// before the newest 200 are processing and stale, the newest 20 are init; one wallet per 100
// orders, four currencies. Kept by retention only: idempotency keys (3 days), both outboxes (4 days),
// applied callbacks (8 days), so a pruning run finds a day of each past its retention.
import pg from 'pg';
import { withLock } from './heavyLock.ts';

export const RATE_PER_DAY = 10_000;
export const MANUAL_ORDERS = 1_000;
export const STALE_PROCESSING_ORDERS = 1_000;
const NEWEST_FINAL = 200;
const INIT_ORDERS = 20;
const ORDERS_PER_ACCOUNT = 100;

export type HistoryPlan = Readonly<{ orders: number; accounts: number; anchor: string; spanDays: number }>;

/** The secrets the bench's processes share (the simulator signs with the webhook secret). */
export const HISTORY_SECRETS = {
  AUTH_JWT_SECRET: 'history-bench-jwt-secret-0123456789-abcdef',
  ADMIN_TOKEN: 'history-bench-admin-token-0123',
  INTERNAL_TOKEN: 'history-bench-internal-token-01',
  PSP_WEBHOOK_SECRET: 'history-bench-webhook-secret-0123',
} as const;

export type TimingInput = Readonly<{ balanceUrl: string; ledgerUrl: string; simUrl: string; plan: HistoryPlan; runs: number }>;

/** One entry of history-*.json's `history`, exactly these fields. */
export type TimingResult = Readonly<{
  orders: number;
  recoveryRunMs: number;
  reconcileRunMs: number;
  pruneRunMs: number;
  trialBalanceMs: number;
  balanceAtMs: number;
  statementMs: number;
  acceptP99Ms: number;
  providerChecksPerSec: number;
}>;

export function planHistory(orders: number, anchor: string): HistoryPlan {
  return { orders, accounts: Math.max(4, Math.floor(orders / ORDERS_PER_ACCOUNT)), anchor, spanDays: orders / RATE_PER_DAY };
}

type Log = (line: string) => void;

/**
 * One row per order, every column a function of g (1 = oldest): $1 anchor, $2 orders, $3 accounts,
 * $4 span in days. Ids are UUIDv7 made from the creation time (as the application makes them),
 * deterministic so that the Ledger DB computes the same ones.
 */
export const ORDERS_SELECT = `
  select s.g, s.a, md5('acct' || s.a)::uuid as account_id, s.currency, s.created_at, s.amount_minor,
         (s.hex_ms || '7' || lpad(to_hex(s.g % 4096), 3, '0') || '8' || lpad(to_hex(s.g), 15, '0'))::uuid as order_id,
         (s.hex_ms || '7' || lpad(to_hex(s.g % 4096), 3, '0') || '9' || lpad(to_hex(s.g), 15, '0'))::uuid as transaction_id,
         s.status,
         case s.status when 'init' then s.created_at when 'processing' then s.created_at + interval '1 second'
                       when 'manual' then s.created_at + interval '10 minutes' else s.created_at + interval '30 seconds' end as updated_at
    from (
      select t.*, lpad(to_hex((extract(epoch from t.created_at) * 1000)::bigint), 12, '0') as hex_ms,
             case when t.g > $2::int - ${INIT_ORDERS} then 'init'
                  when t.g > $2::int - ${NEWEST_FINAL} then case when t.r < 68 then 'failed' else 'success' end
                  when t.g > $2::int - ${NEWEST_FINAL + STALE_PROCESSING_ORDERS} then 'processing'
                  when t.g % greatest(1, $2::int / ${MANUAL_ORDERS}) = 0 then 'manual'
                  when t.r < 68 then 'failed'
                  else 'success' end as status
        from (select g, g % $3::int as a, (array['USD', 'EUR', 'GBP', 'JPY'])[1 + (g % $3::int) % 4] as currency,
                     $1::timestamptz - make_interval(secs => $4::float8 * 86400 * (($2::int - g)::float8 / $2::int)) - interval '1 minute'
                       as created_at,
                     100 + (hashint4(g)::bigint + 2147483648) % 99900 as amount_minor,
                     (hashint4(g * 31 + 7)::bigint + 2147483648) % 1000 as r
                from generate_series(1, $2::int) g) t
    ) s`;

async function session(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`set session_replication_role = replica; set synchronous_commit = off;
                      set work_mem = '256MB'; set maintenance_work_mem = '1GB'; set statement_timeout = 0`);
  return client;
}

/** The heavy-run lock each step holds SHARED while it runs (none: no lock); set by the bench. */
let stepLock: string | undefined;
export function setStepLock(file: string | undefined): void {
  stepLock = file;
}
/** fn as one step of generation: under the shared lock, released between steps */
export const asStep = <T>(fn: () => Promise<T>): Promise<T> => withLock(stepLock, 'shared', fn);

async function step(client: pg.Client, log: Log, label: string, text: string, values: unknown[] = []): Promise<void> {
  const started = performance.now();
  const result = await asStep(() => client.query(text, values));
  log(`  ${label}: ${result.rowCount ?? 0} rows, ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

/** Drops the table's indexes that no constraint owns, runs the load, then builds them again as they were. */
async function withoutSecondaryIndexes(client: pg.Client, log: Log, tables: readonly string[], load: () => Promise<void>): Promise<void> {
  const { rows } = await client.query<{ name: string; def: string }>(
    `select i.indexname as name, i.indexdef as def from pg_indexes i
      where i.schemaname = 'public' and i.tablename = any($1::text[])
        and not exists (select 1 from pg_constraint c where c.conname = i.indexname)`,
    [tables],
  );
  for (const row of rows) await client.query(`drop index ${client.escapeIdentifier(row.name)}`);
  await load();
  for (const row of rows) await step(client, log, `index ${row.name}`, row.def);
}

const params = (plan: HistoryPlan) => [plan.anchor, plan.orders, plan.accounts, plan.spanDays];

export async function generateBalance(url: string, plan: HistoryPlan, log: Log): Promise<void> {
  const c = await session(url);
  try {
    await step(c, log, 'staging orders', `create unlogged table hist_orders as ${ORDERS_SELECT}`, params(plan));
    await step(
      c,
      log,
      'accounts',
      `insert into accounts (id, user_id, currency, created_at, updated_at)
       select md5('acct' || a)::uuid, 'hist-' || a, (array['USD', 'EUR', 'GBP', 'JPY'])[1 + a % 4],
              $1::timestamptz - make_interval(days => ceil($2::float8)::int + 10), $1::timestamptz - interval '1 hour'
         from generate_series(0, $3::int - 1) a`,
      [plan.anchor, plan.spanDays, plan.accounts],
    );
    await withoutSecondaryIndexes(
      c,
      log,
      ['withdraw_orders', 'withdraw_status_history', 'reservations', 'gateway_submit_attempts'],
      async () => {
        await step(
          c,
          log,
          'withdraw_orders',
          `insert into withdraw_orders (id, transaction_id, user_id, account_id, to_account_id, amount_minor, currency, status,
                                      failure_reason, created_at, updated_at)
         select o.order_id, o.transaction_id, 'hist-' || o.a, o.account_id, 'bank-' || o.a, o.amount_minor, o.currency, o.status,
                case when o.status = 'failed' then 'beneficiary_bank_rejected' end, o.created_at, o.updated_at
           from hist_orders o order by o.g`,
        );
        await step(
          c,
          log,
          'reservations',
          `insert into reservations (transaction_id, account_id, amount_minor, status, created_at, updated_at)
         select o.transaction_id, o.account_id, o.amount_minor,
                case o.status when 'success' then 'captured' when 'failed' then 'released' else 'held' end, o.created_at, o.updated_at
           from hist_orders o order by o.g`,
        );
        await step(
          c,
          log,
          'withdraw_status_history',
          `insert into withdraw_status_history (order_id, from_status, to_status, actor, actor_id, reason, evidence, created_at)
         select o.order_id, h.from_status, h.to_status, h.actor, h.actor_id, h.reason, h.evidence, h.at
           from hist_orders o
          cross join lateral (values
            (0, null, 'init', 'api', 'hist-' || o.a, 'withdraw requested', null::jsonb, o.created_at),
            (1, 'init', 'processing', 'job', 'gateway__submit', 'provider accepted the payout', null::jsonb, o.created_at + interval '1 second'),
            (2, 'processing', o.status, case o.status when 'manual' then 'reconciler' else 'provider' end, 'hist',
             'provider reported ' || o.status,
             case when o.status = 'manual' then '{"statusQueries": [{"result": "unknown"}]}'::jsonb end, o.updated_at)
          ) as h(n, from_status, to_status, actor, actor_id, reason, evidence, at)
          where h.n = 0 or (h.n = 1 and o.status <> 'init') or (h.n = 2 and o.status in ('success', 'failed', 'manual'))
          order by o.g, h.n`,
        );
        await step(
          c,
          log,
          'gateway_submit_attempts',
          `insert into gateway_submit_attempts (transaction_id, result, http_status, detail, duration_ms, created_at)
         select o.transaction_id, 'accepted', 202, '{"status": "pending"}', 12, o.created_at + interval '1 second'
           from hist_orders o where o.status <> 'init' order by o.g`,
        );
      },
    );
    // one deposit per account covering all its orders, a month before the first of them; I1-I3 hold
    await step(
      c,
      log,
      'credits and balances',
      `with sums as (
         select o.account_id, sum(o.amount_minor) + 1000000 as credited,
                coalesce(sum(o.amount_minor) filter (where o.status = 'success'), 0) as captured,
                coalesce(sum(o.amount_minor) filter (where o.status in ('init', 'processing', 'manual')), 0) as reserved
           from hist_orders o group by o.account_id
       ), credited as (
         insert into credits (transaction_id, account_id, amount_minor, currency, actor, created_at)
         select md5('deposit' || s.account_id::text)::uuid, s.account_id, s.credited, a.currency, 'bench',
                $1::timestamptz - make_interval(days => ceil($2::float8)::int + 5)
           from sums s join accounts a on a.id = s.account_id
         returning account_id
       )
       update accounts a
          set balance_minor = s.credited - s.captured, reserved_minor = s.reserved,
              available_minor = s.credited - s.captured - s.reserved
         from sums s
        where a.id = s.account_id and s.account_id in (select account_id from credited)`,
      [plan.anchor, plan.spanDays],
    );
    await step(
      c,
      log,
      'idempotency_keys (3 days)',
      `insert into idempotency_keys (user_id, idempotency_key, request_hash, order_id, response_status, response_body, created_at)
       select 'hist-' || o.a, (lpad(to_hex((extract(epoch from o.created_at) * 1000)::bigint), 12, '0') || '7' || lpad(to_hex(o.g % 4096), 3, '0')
                               || 'a' || lpad(to_hex(o.g), 15, '0'))::uuid,
              md5('req' || o.g), o.order_id, 202,
              json_build_object('code', 0, 'msg', 'processing', 'data', json_build_object('withdrawOrderId', o.order_id)), o.created_at
         from hist_orders o where o.created_at > $1::timestamptz - interval '3 days'`,
      [plan.anchor],
    );
    await step(
      c,
      log,
      'outbox (4 days)',
      `insert into outbox (topic, transaction_id, payload, created_at, relayed_at)
       select 'withdraw.' || e.topic, o.transaction_id, jsonb_build_object('transactionId', o.transaction_id, 'orderId', o.order_id),
              e.at, e.at + interval '1 second'
         from hist_orders o
        cross join lateral (values ('created', o.created_at), ('processing', o.created_at + interval '1 second'), (o.status, o.updated_at))
                as e(topic, at)
        where o.created_at > $1::timestamptz - interval '4 days' and o.status in ('success', 'failed')
        order by e.at`,
      [plan.anchor],
    );
    await step(
      c,
      log,
      'gateway_inbox (8 days)',
      `insert into gateway_inbox (event_id, reference, status, occurred_at, payload, signed_at, received_at, processed_at, outcome, attempts)
       select 'evt-' || o.g, o.transaction_id::text, case o.status when 'success' then 'paid' else 'failed' end, o.updated_at,
              '{}', o.updated_at, o.updated_at, o.updated_at, 'applied', 1
         from hist_orders o where o.created_at > $1::timestamptz - interval '8 days' and o.status in ('success', 'failed')
        order by o.g`,
      [plan.anchor],
    );
    await step(
      c,
      log,
      'reconciliation_breaks and runs',
      `with breaks as (
         insert into reconciliation_breaks (category, subject, expected, actual, first_seen_at, last_seen_at, resolved_at, resolution)
         select 'provider_not_paid', 'order:hist-' || i, 'x', 'y', $1::timestamptz - make_interval(days => i % 90), $1::timestamptz,
                $1::timestamptz, 'fixed'
           from generate_series(1, 2000) i returning 1
       )
       insert into reconciliation_runs (mode, started_at, finished_at, checked_from, checked_until)
       select 'incremental', $1::timestamptz - interval '6 minutes', $1::timestamptz - interval '6 minutes',
              $1::timestamptz - interval '12 minutes', $1::timestamptz - interval '7 minutes'
        where (select count(*) from breaks) > 0`,
      [plan.anchor],
    );
    // the provider checks' cursors: the first a day behind, the recheck two days behind
    await step(
      c,
      log,
      'reconciliation_cursors',
      `insert into reconciliation_cursors (name, position_at, position_order)
       select v.name, v.at, '00000000-0000-0000-0000-000000000000'::uuid
         from (values ('provider_first', $1::timestamptz - interval '26 hours'),
                      ('provider_recheck', $1::timestamptz - interval '50 hours')) as v(name, at)`,
      [plan.anchor],
    );
    await c.query('drop table hist_orders');
  } finally {
    await c.end();
  }
}

export async function generateLedger(url: string, plan: HistoryPlan, log: Log): Promise<void> {
  const c = await session(url);
  // platform account ids: accounts + 1 + currency index * 3 + (0 in transit, 1 provider clearing, 2 funding)
  const platform = (kindIndex: number) => `$1::int + 1 + (j.a % 4) * 3 + ${kindIndex}`;
  try {
    await step(c, log, 'staging orders', `create unlogged table hist_orders as ${ORDERS_SELECT}`, params(plan));
    await step(
      c,
      log,
      'ledger_accounts',
      `insert into ledger_accounts (id, code, kind, currency, external_id, created_at) overriding system value
       select a + 1, 'wallet:' || md5('acct' || a)::uuid, 'user_wallet', (array['USD', 'EUR', 'GBP', 'JPY'])[1 + a % 4],
              md5('acct' || a)::uuid, $1::timestamptz - make_interval(days => ceil($3::float8)::int + 10)
         from generate_series(0, $2::int - 1) a
       union all
       select $2::int + 1 + cur.c * 3 + p.k, p.prefix || cur.code, p.kind, cur.code, null,
              $1::timestamptz - make_interval(days => ceil($3::float8)::int + 10)
         from (select c, (array['USD', 'EUR', 'GBP', 'JPY'])[1 + c] as code from generate_series(0, 3) c) cur
        cross join (values (0, 'in_transit:', 'withdrawals_in_transit'), (1, 'provider_clearing:', 'provider_clearing'),
                           (2, 'funding:', 'funding')) as p(k, prefix, kind)`,
      [plan.anchor, plan.accounts, plan.spanDays],
    );
    await step(
      c,
      log,
      'staging journals',
      `create unlogged table hist_journals as
       select row_number() over (order by j.at, j.seq) as id, j.*
         from (
           select 0 as seq, md5('deposit' || md5('acct' || d.a)::uuid::text)::uuid as transaction_id, 'deposit'::text as kind,
                  d.a, d.credited as amount, $1::timestamptz - make_interval(days => ceil($2::float8)::int + 5) as at,
                  'balance-outbox:deposit-' || d.a as source
             from (select o.a, sum(o.amount_minor) + 1000000 as credited from hist_orders o group by o.a) d
           union all
           select 2 * o.g, o.transaction_id, 'hold', o.a, o.amount_minor, o.created_at + interval '1 second', 'balance-outbox:' || (3 * o.g)
             from hist_orders o
           union all
           select 2 * o.g + 1, o.transaction_id, case when o.status = 'success' then 'settle' else 'reverse' end, o.a, o.amount_minor,
                  o.updated_at, 'balance-outbox:' || (3 * o.g + 2)
             from hist_orders o where o.status in ('success', 'failed')
         ) j`,
      [plan.anchor, plan.spanDays],
    );
    await step(
      c,
      log,
      'journal_transactions',
      `insert into journal_transactions (id, transaction_id, kind, source, created_at) overriding system value
       select id, transaction_id, kind, source, at from hist_journals order by id`,
    );
    // debit first, then credit, as ledger_post_journal appends them
    await step(
      c,
      log,
      'staging postings',
      `create unlogged table hist_postings as
       select j.id as journal_id, j.transaction_id, j.kind, x.side, x.account_id::bigint as account_id, x.amount::bigint as amount,
              (array['USD', 'EUR', 'GBP', 'JPY'])[1 + j.a % 4] as currency, j.at
         from hist_journals j
        cross join lateral (values
          (0, case j.kind when 'deposit' then ${platform(2)} when 'hold' then j.a + 1 else ${platform(0)} end, j.amount),
          (1, case j.kind when 'deposit' then j.a + 1 when 'hold' then ${platform(0)} when 'settle' then ${platform(1)} else j.a + 1 end,
           -j.amount)) as x(side, account_id, amount)`,
      [plan.accounts],
    );
    // the hash chain: a running aggregate over each account's entries in sequence order
    await c.query(`
      create function pg_temp.hist_chain_step(p_state bytea, p_account bigint, p_seq bigint, p_journal bigint, p_tx uuid,
                                              p_kind text, p_amount bigint, p_currency text, p_previous bigint, p_current bigint,
                                              p_at timestamptz)
      returns bytea language sql immutable as $$
        select ledger_entry_hash(p_state, p_account, p_seq, p_journal, p_tx, p_kind, p_amount, p_currency, p_previous, p_current, p_at)
      $$;
      create aggregate pg_temp.hist_chain(bigint, bigint, bigint, uuid, text, bigint, text, bigint, bigint, timestamptz)
        (sfunc = pg_temp.hist_chain_step, stype = bytea);`);
    // the chains account by account, a slice of the accounts per step (each step holds the lock
    // briefly), into a staging table; then one insert in time order, as the ledger appends them
    await c.query(`create unlogged table hist_entries (journal_id bigint, account_id bigint, amount bigint, currency text, seq bigint,
                     running bigint, previous_hash bytea, hash bytea, at timestamptz, side int)`);
    const slices = Math.max(1, Math.min(16, Math.ceil(plan.orders / 1_000_000)));
    for (let k = 0; k < slices; k += 1) {
      await step(
        c,
        log,
        `staging entries: running balances and hash chains (accounts slice ${k + 1}/${slices})`,
        `insert into hist_entries
         select h.journal_id, h.account_id, h.amount, h.currency, h.seq, h.running,
                lag(h.hash) over (partition by h.account_id order by h.seq), h.hash, h.at, h.side
           from (
             select b.*, pg_temp.hist_chain(b.account_id, b.seq, b.journal_id, b.transaction_id, b.kind, b.amount, b.currency,
                                            b.running - b.amount, b.running, b.at)
                           over (partition by b.account_id order by b.seq rows between unbounded preceding and current row) as hash
               from (select p.*, row_number() over w as seq, (sum(p.amount) over w)::bigint as running
                       from hist_postings p where p.account_id % $1::int = $2::int
                     window w as (partition by p.account_id order by p.journal_id, p.side)) b
           ) h`,
        [slices, k],
      );
    }
    await c.query('drop table hist_postings');
    await withoutSecondaryIndexes(c, log, ['entries'], async () => {
      await step(
        c,
        log,
        'entries',
        `insert into entries (journal_id, ledger_account_id, amount_minor, currency, account_sequence, previous_balance_minor,
                              current_balance_minor, previous_hash, hash, created_at)
         select h.journal_id, h.account_id, h.amount, h.currency, h.seq, h.running - h.amount, h.running, h.previous_hash, h.hash, h.at
           from hist_entries h
          order by h.at, h.journal_id, h.side`,
      );
      await c.query('drop table hist_entries');
    });
    await step(
      c,
      log,
      'ledger account projections',
      `update ledger_accounts a set balance_minor = e.current_balance_minor, entry_count = e.account_sequence, last_entry_hash = e.hash
         from (select distinct on (ledger_account_id) ledger_account_id, current_balance_minor, account_sequence, hash
                 from entries order by ledger_account_id, account_sequence desc) e
        where a.id = e.ledger_account_id`,
    );
    await step(
      c,
      log,
      'ledger outbox (4 days)',
      `insert into outbox (topic, transaction_id, payload, created_at, relayed_at)
       select 'ledger.held', j.transaction_id, jsonb_build_object('transactionId', j.transaction_id, 'journalId', j.id), j.at, j.at + interval '1 second'
         from hist_journals j where j.kind = 'hold' and j.at > $1::timestamptz - interval '4 days' order by j.id`,
      [plan.anchor],
    );
    await step(
      c,
      log,
      'identity sequences',
      `select setval(pg_get_serial_sequence(t, 'id'), m)
         from (values ('ledger_accounts', (select max(id) from ledger_accounts)),
                      ('journal_transactions', (select max(id) from journal_transactions)),
                      ('entries', (select max(id) from entries))) as v(t, m)`,
    );
    await c.query('drop table hist_orders, hist_journals');
  } finally {
    await c.end();
  }
}

export async function vacuumAnalyze(url: string, log: Log, label: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const started = performance.now();
    await client.query('set maintenance_work_mem = $$1GB$$');
    // table by table (each a step of its own), the largest first, then the rest of the database
    const { rows } = await client.query<{ name: string }>(
      `select c.oid::regclass::text as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where c.relkind = 'r' and n.nspname = 'public' and pg_relation_size(c.oid) > 64 * 1024 * 1024
        order by pg_relation_size(c.oid) desc`,
    );
    for (const row of rows) {
      const one = performance.now();
      await asStep(() => client.query(`vacuum (analyze) ${row.name}`));
      log(`  vacuum analyze ${label}.${row.name}: ${((performance.now() - one) / 1000).toFixed(1)} s`);
    }
    await asStep(() => client.query('vacuum (analyze)'));
    await asStep(() => client.query('checkpoint'));
    log(`  vacuum analyze ${label}: ${((performance.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    await client.end();
  }
}
