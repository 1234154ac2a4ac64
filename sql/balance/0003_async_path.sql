-- Up Migration
-- The asynchronous half: reconciliation breaks, the provider callback inbox, gateway submission
-- attempts (evidence) and worker heartbeats. The functions that use them are in sql/balance/functions/.

-- Reconciliation breaks: what disagrees, where, first and last seen; one open break per
-- (category, subject), re-detection bumps last_seen_at.
create table reconciliation_breaks (
  id bigint generated always as identity primary key,
  category text not null,
  subject text not null,
  order_id uuid,
  account_id uuid,
  transaction_id uuid,
  currency text,
  expected text,
  actual text,
  details jsonb not null default '{}',
  first_seen_at timestamptz not null default now(),
  last_seen_at timestamptz not null default now(),
  seen_count int not null default 1,
  resolved_at timestamptz,
  resolution text,
  constraint reconciliation_breaks_resolution_complete check ((resolved_at is null) = (resolution is null))
);
create unique index reconciliation_breaks_open_key on reconciliation_breaks (category, subject) where resolved_at is null;
create index reconciliation_breaks_open_idx on reconciliation_breaks (first_seen_at) where resolved_at is null;

-- Provider callbacks, stored before the 200 and applied by the worker.
create table gateway_inbox (
  id bigint generated always as identity primary key,
  event_id text not null constraint gateway_inbox_event_id_key unique,
  reference text not null,
  status text not null constraint gateway_inbox_status_known check (status in ('paid', 'failed')),
  failure_code text,
  occurred_at timestamptz not null,
  payload jsonb not null,
  signed_at timestamptz not null,
  received_at timestamptz not null default now(),
  processed_at timestamptz,
  outcome text,
  attempts int not null default 0,
  last_error text
);
create index gateway_inbox_pending_idx on gateway_inbox (id) where processed_at is null;
create index gateway_inbox_reference_idx on gateway_inbox (reference);

-- Every call to the provider, with what came back: the evidence behind manual review.
create table gateway_submit_attempts (
  id bigint generated always as identity primary key,
  transaction_id uuid not null references withdraw_orders (transaction_id),
  result text not null constraint gateway_submit_attempts_result_known check (result in ('accepted', 'rejected', 'unknown')),
  http_status int,
  detail jsonb not null default '{}',
  duration_ms int,
  created_at timestamptz not null default now()
);
create index gateway_submit_attempts_tx_idx on gateway_submit_attempts (transaction_id, id);

-- Worker heartbeats: the watchdog frees the jobs of workers that stopped beating.
create table worker_heartbeats (
  worker_id text primary key,
  hostname text not null,
  pid int not null,
  started_at timestamptz not null default now(),
  last_seen_at timestamptz not null default now()
);
