-- Up Migration
-- Ledger DB: double-entry, append-only. Amounts are signed bigint minor units: a debit is positive,
-- a credit negative, so every journal transaction sums to zero per currency and so does the whole
-- ledger (the trial balance). An account's balance is debits minus credits; a user wallet, being a
-- liability, normally has a negative balance whose absolute value is what the platform owes.

create table ledger_accounts (
  id bigint generated always as identity primary key,
  code text not null constraint ledger_accounts_code_key unique,
  kind text not null constraint ledger_accounts_kind_known
    check (kind in ('user_wallet', 'withdrawals_in_transit', 'provider_clearing', 'funding')),
  currency text not null constraint ledger_accounts_currency_known check (currency in ('USD', 'EUR', 'GBP', 'JPY')),
  -- the Balance DB account a user wallet mirrors; null for the platform's own accounts
  external_id uuid,
  balance_minor bigint not null default 0,
  entry_count bigint not null default 0,
  last_entry_hash bytea,
  created_at timestamptz not null default now(),
  constraint ledger_accounts_wallet_has_owner check ((kind = 'user_wallet') = (external_id is not null))
);

create table journal_transactions (
  id bigint generated always as identity primary key,
  transaction_id uuid not null,
  kind text not null constraint journal_transactions_kind_known check (kind in ('deposit', 'hold', 'settle', 'reverse')),
  -- where the posting came from (e.g. "balance-outbox:42"), for the audit trail
  source text not null,
  created_at timestamptz not null default now(),
  -- a second delivery of the same event is a no-op
  constraint journal_transactions_transaction_kind_key unique (transaction_id, kind)
);

create table entries (
  id bigint generated always as identity primary key,
  journal_id bigint not null references journal_transactions (id),
  ledger_account_id bigint not null references ledger_accounts (id),
  amount_minor bigint not null constraint entries_amount_nonzero check (amount_minor <> 0),
  currency text not null,
  -- the account's running balance around this entry, and its place in the account's hash chain
  account_sequence bigint not null constraint entries_sequence_positive check (account_sequence > 0),
  previous_balance_minor bigint not null,
  current_balance_minor bigint not null,
  previous_hash bytea,
  hash bytea not null,
  created_at timestamptz not null default now(),
  constraint entries_running_balance check (current_balance_minor = previous_balance_minor + amount_minor),
  constraint entries_account_sequence_key unique (ledger_account_id, account_sequence)
);
create index entries_journal_idx on entries (journal_id);

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
