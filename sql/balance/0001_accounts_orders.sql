-- Up Migration
-- Balance DB: wallets, withdraw orders, their history, idempotency keys, reservations, outbox.
-- Money is bigint minor units. Every invariant the code relies on is also a constraint here.

create table accounts (
  id uuid primary key default uuidv7(),
  user_id text not null constraint accounts_user_id_format check (user_id ~ '^[A-Za-z0-9_.:@-]{1,128}$'),
  currency text not null constraint accounts_currency_known check (currency in ('USD', 'EUR', 'GBP', 'JPY')),
  status text not null default 'active' constraint accounts_status_known check (status in ('active', 'frozen', 'closed')),
  balance_minor bigint not null default 0,
  available_minor bigint not null default 0,
  reserved_minor bigint not null default 0,
  version bigint not null default 0,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  -- I1: balance = available + reserved, neither part negative.
  constraint accounts_balance_split check (balance_minor = available_minor + reserved_minor),
  constraint accounts_available_nonnegative check (available_minor >= 0),
  constraint accounts_reserved_nonnegative check (reserved_minor >= 0)
);
create index accounts_user_id_idx on accounts (user_id, currency);

-- Deposits into a wallet, idempotent by the caller's transaction id.
create table credits (
  transaction_id uuid primary key,
  account_id uuid not null references accounts (id),
  amount_minor bigint not null constraint credits_amount_positive check (amount_minor > 0),
  currency text not null,
  actor text not null,
  created_at timestamptz not null default now()
);
create index credits_account_id_idx on credits (account_id);

create table withdraw_orders (
  id uuid primary key,
  transaction_id uuid not null constraint withdraw_orders_transaction_id_key unique,
  user_id text not null,
  account_id uuid not null references accounts (id),
  to_account_id text not null constraint withdraw_orders_to_account_format check (to_account_id ~ '^[A-Za-z0-9_-]{1,64}$'),
  amount_minor bigint not null constraint withdraw_orders_amount_positive check (amount_minor > 0),
  currency text not null,
  status text not null constraint withdraw_orders_status_known
    check (status in ('init', 'processing', 'manual', 'success', 'failed')),
  failure_reason text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
-- Open orders, for recovery crons and I2 checks; terminal orders drop out of this index.
create index withdraw_orders_open_idx on withdraw_orders (status, updated_at)
  where status in ('init', 'processing', 'manual');
create index withdraw_orders_account_idx on withdraw_orders (account_id, created_at);
create index withdraw_orders_user_idx on withdraw_orders (user_id, currency, created_at);

-- The closed set of moves of the state machine (app/withdraw/withdrawStateMachine.ts holds the same table).
create table withdraw_transitions (
  from_status text not null,
  to_status text not null,
  primary key (from_status, to_status)
);
insert into withdraw_transitions (from_status, to_status) values
  ('init', 'processing'), ('init', 'manual'), ('init', 'failed'),
  ('processing', 'success'), ('processing', 'failed'), ('processing', 'manual'),
  ('manual', 'success'), ('manual', 'failed');

create table withdraw_status_history (
  id bigint generated always as identity primary key,
  order_id uuid not null references withdraw_orders (id),
  from_status text,
  to_status text not null,
  actor text not null constraint withdraw_status_history_actor_known
    check (actor in ('api', 'job', 'provider', 'operator', 'reconciler')),
  actor_id text,
  reason text,
  evidence jsonb,
  created_at timestamptz not null default now(),
  constraint withdraw_status_history_transition_allowed
    foreign key (from_status, to_status) references withdraw_transitions (from_status, to_status)
);
create index withdraw_status_history_order_idx on withdraw_status_history (order_id, id);

-- Money held for one withdrawal; the balance module's API is idempotent by transaction_id.
create table reservations (
  transaction_id uuid primary key,
  account_id uuid not null references accounts (id),
  amount_minor bigint not null constraint reservations_amount_positive check (amount_minor > 0),
  status text not null constraint reservations_status_known check (status in ('held', 'captured', 'released')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index reservations_held_idx on reservations (account_id) where status = 'held';

-- Per user and key: the request's hash and the stored response (replayed for the same key).
create table idempotency_keys (
  user_id text not null,
  idempotency_key uuid not null,
  request_hash text not null,
  order_id uuid,
  response_status int not null,
  -- json, not jsonb: the stored reply keeps its exact key order, so a replay is byte-identical
  response_body json not null,
  created_at timestamptz not null default now(),
  primary key (user_id, idempotency_key)
);
create index idempotency_keys_created_idx on idempotency_keys (created_at);

-- Transactional outbox: written in the same transaction as the state change it announces.
create table outbox (
  id bigint generated always as identity primary key,
  topic text not null,
  transaction_id uuid not null,
  payload jsonb not null,
  created_at timestamptz not null default now(),
  relayed_at timestamptz
);
create index outbox_unrelayed_idx on outbox (id) where relayed_at is null;
create index outbox_relayed_idx on outbox (relayed_at) where relayed_at is not null;
