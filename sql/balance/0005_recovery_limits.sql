-- Up Migration
-- Recovery evidence, reconciliation runs, the operators' audit trail and withdraw limits.

-- Every provider status query made by recovery, with what came back: evidence for manual review.
create table gateway_status_queries (
  id bigint generated always as identity primary key,
  transaction_id uuid not null references withdraw_orders (transaction_id),
  result text not null constraint gateway_status_queries_result_known
    check (result in ('pending', 'paid', 'failed', 'not_found', 'unknown')),
  detail jsonb not null default '{}',
  created_at timestamptz not null default now()
);
create index gateway_status_queries_tx_idx on gateway_status_queries (transaction_id, id);

-- One row per reconciliation run: what it covered and what it found.
create table reconciliation_runs (
  id bigint generated always as identity primary key,
  mode text not null constraint reconciliation_runs_mode_known check (mode in ('incremental', 'full')),
  started_at timestamptz not null default now(),
  finished_at timestamptz,
  -- the run checked changes up to this time (now minus the settle delay); the next run starts here
  checked_until timestamptz not null,
  checked_from timestamptz,
  accounts_checked int not null default 0,
  orders_checked int not null default 0,
  provider_checked int not null default 0,
  breaks_found int not null default 0,
  breaks_resolved int not null default 0,
  error text
);
create index reconciliation_runs_finished_idx on reconciliation_runs (finished_at desc) where finished_at is not null and error is null;

-- Operators' actions, written in the same transaction as the action.
create table admin_audit_log (
  id bigint generated always as identity primary key,
  operator text not null,
  action text not null,
  subject text not null,
  details jsonb not null default '{}',
  request_id text,
  created_at timestamptz not null default now()
);
create index admin_audit_log_subject_idx on admin_audit_log (subject, id);

-- Withdraw limits: per order and per rolling 24 hours (per user and currency). An account's own
-- limit wins; otherwise the currency's default; otherwise none.
alter table accounts
  add column withdraw_order_max_minor bigint constraint accounts_withdraw_order_max_positive check (withdraw_order_max_minor > 0),
  add column withdraw_daily_max_minor bigint constraint accounts_withdraw_daily_max_positive check (withdraw_daily_max_minor > 0);

create table withdraw_limit_defaults (
  currency text primary key constraint withdraw_limit_defaults_currency_known check (currency in ('USD', 'EUR', 'GBP', 'JPY')),
  order_max_minor bigint constraint withdraw_limit_defaults_order_max_positive check (order_max_minor > 0),
  daily_max_minor bigint constraint withdraw_limit_defaults_daily_max_positive check (daily_max_minor > 0),
  updated_at timestamptz not null default now()
);

-- The rolling window sums a user's recent orders in one currency.
create index withdraw_orders_user_window_idx on withdraw_orders (user_id, currency, created_at) include (amount_minor, status);
drop index withdraw_orders_user_idx;
