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

-- Append-only, enforced here and not only in code: UPDATE, DELETE and TRUNCATE fail.
create function ledger_refuse_change() returns trigger language plpgsql as $$
begin
  raise exception 'ledger table % is append-only: % refused', tg_table_name, tg_op
    using errcode = 'insufficient_privilege', hint = 'corrections are new entries, never edits';
end $$;
create trigger entries_append_only before update or delete on entries
  for each row execute function ledger_refuse_change();
create trigger entries_no_truncate before truncate on entries
  for each statement execute function ledger_refuse_change();
create trigger journal_transactions_append_only before update or delete on journal_transactions
  for each row execute function ledger_refuse_change();
create trigger journal_transactions_no_truncate before truncate on journal_transactions
  for each statement execute function ledger_refuse_change();

-- I4: every journal transaction balances (per currency) and has at least two entries. Checked at
-- commit, once the whole transaction is written.
create function journal_must_balance() returns trigger language plpgsql as $$
declare
  v_journal_id bigint;
  v_count bigint;
  v_unbalanced text;
begin
  -- a record's fields are resolved per statement, so each branch only names its own table's field
  if tg_table_name = 'entries' then
    v_journal_id := new.journal_id;
  else
    v_journal_id := new.id;
  end if;
  select count(*) into v_count from entries e where e.journal_id = v_journal_id;
  select string_agg(currency || ' ' || total, ', ') into v_unbalanced
    from (select e.currency, sum(e.amount_minor) as total from entries e
           where e.journal_id = v_journal_id group by e.currency having sum(e.amount_minor) <> 0) s;
  if v_count < 2 or v_unbalanced is not null then
    raise exception 'journal transaction % does not balance (% entries; off by %)',
      v_journal_id, v_count, coalesce(v_unbalanced, '0')
      using errcode = 'check_violation', constraint = 'journal_transactions_balanced';
  end if;
  return null;
end $$;
create constraint trigger journal_transactions_balanced after insert on journal_transactions
  deferrable initially deferred for each row execute function journal_must_balance();
create constraint trigger entries_balanced after insert on entries
  deferrable initially deferred for each row execute function journal_must_balance();

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

-- Only the first unrelayed row notifies (see the Balance DB's outbox_notify for why).
create function outbox_notify() returns trigger language plpgsql as $$
begin
  if not exists (select 1 from outbox o
                  where o.relayed_at is null and o.id < (select min(n.id) from outbox_new_rows n)) then
    perform pg_notify('ledger_outbox', '');
  end if;
  return null;
end $$;
create trigger outbox_notify after insert on outbox referencing new table as outbox_new_rows
  for each statement execute function outbox_notify();

-- Down Migration
drop table outbox, entries, journal_transactions, ledger_accounts cascade;
drop function outbox_notify, journal_must_balance, ledger_refuse_change;
