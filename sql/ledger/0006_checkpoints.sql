-- Up Migration
-- Ledger checkpoints: per ledger account and UTC day, the balance at the day's start and end and the
-- day's debits, credits and entries; per currency and account kind and day, the same totals. A job
-- (ledger__checkpoint, reconcile/ledgerCheckpoints.ts) closes each day once it is over (plus a settle
-- margin) through ledger_close_day; `npm run ledger:verify` recomputes every checkpoint from the
-- entries. Reports and balances read the last checkpoint plus the entries after it (the tail), so
-- their cost does not grow with history. Shape and rules: sql/README.md, "Ledger checkpoints".

-- One row per closed UTC day, empty days included: every day before max(day) + 1 is closed.
create table ledger_checkpoint_days (
  day date primary key,
  closed_at timestamptz not null default now(),
  -- ledger accounts with entries that day, and those entries
  accounts int not null constraint ledger_checkpoint_days_accounts_nonnegative check (accounts >= 0),
  entry_count bigint not null constraint ledger_checkpoint_days_entries_nonnegative check (entry_count >= 0)
);

-- One row per ledger account and closed day on which the account has entries (sparse: a day without
-- entries has no row; the balance is the closing balance of the account's previous row). An entry
-- belongs to the UTC day of its created_at; along an account's sequence created_at never decreases,
-- so a day's entries are the sequences (previous row's last_account_sequence, last_account_sequence].
create table ledger_checkpoints (
  ledger_account_id bigint not null references ledger_accounts (id),
  day date not null references ledger_checkpoint_days (day),
  currency text not null,
  -- signed as the ledger: debit positive; a wallet (a liability) is normally negative
  opening_balance_minor bigint not null,
  closing_balance_minor bigint not null,
  -- the day's debits (sum of positive amounts) and credits (minus the sum of negative amounts)
  debits_minor bigint not null constraint ledger_checkpoints_debits_nonnegative check (debits_minor >= 0),
  credits_minor bigint not null constraint ledger_checkpoints_credits_nonnegative check (credits_minor >= 0),
  entry_count bigint not null constraint ledger_checkpoints_entries_positive check (entry_count > 0),
  last_account_sequence bigint not null,
  primary key (ledger_account_id, day),
  constraint ledger_checkpoints_closing check (closing_balance_minor = opening_balance_minor + debits_minor - credits_minor),
  constraint ledger_checkpoints_sequence check (last_account_sequence >= entry_count)
);

-- One row per closed day, currency and account kind that exists by then (dense: empty days too),
-- so a period's opening and closing balances per currency and kind are two rows each, and all of
-- history's debits and credits a sum over days (a few thousand rows), never over entries.
create table ledger_checkpoint_totals (
  day date not null references ledger_checkpoint_days (day),
  currency text not null,
  account_kind text not null,
  opening_balance_minor bigint not null,
  closing_balance_minor bigint not null,
  debits_minor bigint not null constraint ledger_checkpoint_totals_debits_nonnegative check (debits_minor >= 0),
  credits_minor bigint not null constraint ledger_checkpoint_totals_credits_nonnegative check (credits_minor >= 0),
  entry_count bigint not null constraint ledger_checkpoint_totals_entries_nonnegative check (entry_count >= 0),
  -- accounts of this kind with entries that day
  accounts int not null,
  primary key (day, currency, account_kind),
  constraint ledger_checkpoint_totals_closing check (closing_balance_minor = opening_balance_minor + debits_minor - credits_minor)
);

-- the application's Ledger DB role closes days (insert) and reads them; it never changes a closed day
do $$
begin
  if exists (select 1 from pg_roles where rolname = 'withdraw_ledger_writer') then
    grant select, insert on ledger_checkpoint_days, ledger_checkpoints, ledger_checkpoint_totals to withdraw_ledger_writer;
  end if;
end $$;
