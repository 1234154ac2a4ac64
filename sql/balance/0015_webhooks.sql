-- Up Migration
-- Outgoing events. The platform's services register endpoints (URL, event types, a signing secret);
-- every state change of an order is already an outbox row written in the transaction of the change,
-- and the Balance relay fans those out into events and per-endpoint deliveries in its own
-- transaction (webhook_enqueue_events). Deliveries are sent by the worker, in order per order and
-- endpoint, retried with backoff; see docs/api.md.

-- A paid payout the provider later reports failed: recorded once per order (the order stays
-- `success` and no money moves; a reconciliation break asks a human), announced as withdraw.reversed.
create table withdraw_reversals (
  order_id uuid primary key references withdraw_orders (id),
  transaction_id uuid not null,
  inbox_id bigint,
  failure_code text,
  reported_at timestamptz not null default now()
);

create table webhook_endpoints (
  id uuid primary key default uuidv7(),
  url text not null constraint webhook_endpoints_url_format check (url ~ '^https?://[^\s/?#]+' and length(url) <= 2048),
  event_types text[] not null constraint webhook_endpoints_event_types_known check (
    cardinality(event_types) between 1 and 5
    and event_types <@ array['withdraw.processing', 'withdraw.manual', 'withdraw.success', 'withdraw.failed', 'withdraw.reversed']
  ),
  -- the HMAC key deliveries are signed with: it has to be readable to sign, so it is stored as is;
  -- shown once when the endpoint is created, never returned again and never logged
  secret text not null constraint webhook_endpoints_secret_length check (length(secret) >= 32),
  status text not null default 'active' constraint webhook_endpoints_status_known check (status in ('active', 'disabled', 'deleted')),
  status_reason text,
  -- failures since the last success; the endpoint is not tried again before next_attempt_at
  consecutive_failures int not null default 0,
  failing_since timestamptz,
  next_attempt_at timestamptz not null default now(),
  last_success_at timestamptz,
  created_by text not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create unique index webhook_endpoints_url_key on webhook_endpoints (url) where status <> 'deleted';

-- The reporting role reads every table; never the signing secrets.
do $$
begin
  if exists (select 1 from pg_roles where rolname = 'withdraw_reporter') then
    revoke select on webhook_endpoints from withdraw_reporter;
    grant select (id, url, event_types, status, status_reason, consecutive_failures, failing_since, next_attempt_at,
                  last_success_at, created_by, created_at, updated_at) on webhook_endpoints to withdraw_reporter;
  end if;
end $$;

-- One event per order and type (each status is entered at most once, a reversal is recorded once),
-- with the order as it was at that change. `rank` orders the events of one order.
create table webhook_events (
  id uuid primary key,
  order_id uuid not null references withdraw_orders (id),
  type text not null,
  rank smallint not null,
  occurred_at timestamptz not null,
  -- json, not jsonb: the order's fields keep the order of GET /withdraw/{id}, so every delivery of
  -- the event carries the same bytes
  data json not null,
  created_at timestamptz not null default now(),
  constraint webhook_events_order_type_key unique (order_id, type)
);
create index webhook_events_occurred_idx on webhook_events (occurred_at);

-- One delivery per event and endpoint. `pending` deliveries are sent head first per (endpoint,
-- order): a delivery waits while an earlier-ranked one of the same order to the same endpoint is
-- still pending. `lease_until` marks one in flight (a worker that dies lets the lease run out).
create table webhook_deliveries (
  id bigint generated always as identity primary key,
  endpoint_id uuid not null references webhook_endpoints (id),
  event_id uuid not null references webhook_events (id),
  order_id uuid not null,
  rank smallint not null,
  status text not null default 'pending' constraint webhook_deliveries_status_known
    check (status in ('pending', 'delivered', 'failed', 'cancelled')),
  attempts int not null default 0,
  next_attempt_at timestamptz not null default now(),
  lease_until timestamptz,
  first_attempt_at timestamptz,
  last_attempt_at timestamptz,
  last_status_code int,
  last_error text,
  delivered_at timestamptz,
  created_at timestamptz not null default now(),
  constraint webhook_deliveries_endpoint_event_key unique (endpoint_id, event_id)
);
-- what is due, per endpoint
create index webhook_deliveries_due_idx on webhook_deliveries (endpoint_id, next_attempt_at) where status = 'pending';
-- the head of each (endpoint, order) chain
create index webhook_deliveries_chain_idx on webhook_deliveries (endpoint_id, order_id, rank) where status = 'pending';
-- the operators' list, newest first, per endpoint
create index webhook_deliveries_endpoint_idx on webhook_deliveries (endpoint_id, id);
create index webhook_deliveries_event_idx on webhook_deliveries (event_id);
