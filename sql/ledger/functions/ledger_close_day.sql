-- Closes one UTC day of the ledger: one ledger_checkpoints row per account with entries that day
-- (opening and closing balance, debits, credits, entry count, last sequence), one
-- ledger_checkpoint_totals row per currency and account kind (dense: every pair that exists, with
-- or without entries that day) and the ledger_checkpoint_days row, in one statement. Days close in
-- order, each once: 'closed', 'already_closed', 'not_due' (p_now is before the day's end plus the
-- settle margin: a posting that started before midnight may still commit) or 'out_of_order' (an
-- earlier day with entries is not closed yet). The opening balance and sequence continue from the
-- account's previous checkpoint (zero before its first); `npm run ledger:verify` recomputes every
-- row from the entries. Reads the day's entries through entries_created_idx (index only).
create or replace function ledger_close_day(p_day date, p_now timestamptz, p_settle_ms int)
returns table (outcome text, accounts int, entry_count bigint)
language plpgsql as $$
#variable_conflict use_column
declare
  v_from timestamptz := p_day::timestamp at time zone 'UTC';
  v_to timestamptz := (p_day + 1)::timestamp at time zone 'UTC';
  v_last date;
  v_accounts int;
  v_entries bigint;
begin
  -- one closer at a time, so days close in order and each once
  perform pg_advisory_xact_lock(hashtextextended('ledger_close_day', 0));
  if exists (select 1 from ledger_checkpoint_days d where d.day = p_day) then
    return query select 'already_closed'::text, null::int, null::bigint;
    return;
  end if;
  if p_now < v_to + make_interval(secs => p_settle_ms / 1000.0) then
    return query select 'not_due'::text, null::int, null::bigint;
    return;
  end if;
  select max(d.day) into v_last from ledger_checkpoint_days d;
  if (v_last is null and exists (select 1 from entries e where e.created_at < v_from))
     or (v_last is not null and p_day <> v_last + 1) then
    return query select 'out_of_order'::text, null::int, null::bigint;
    return;
  end if;

  with per_account as (
    select e.ledger_account_id,
           coalesce(sum(e.amount_minor) filter (where e.amount_minor > 0), 0) as debits_minor,
           coalesce(-sum(e.amount_minor) filter (where e.amount_minor < 0), 0) as credits_minor,
           count(*) as entry_count
      from entries e
     where e.created_at >= v_from and e.created_at < v_to
     group by e.ledger_account_id
  ), day_row as (
    insert into ledger_checkpoint_days (day, accounts, entry_count)
    select p_day, count(*), coalesce(sum(p.entry_count), 0) from per_account p
    returning ledger_checkpoint_days.accounts, ledger_checkpoint_days.entry_count
  ), checkpoints as (
    insert into ledger_checkpoints (ledger_account_id, day, currency, opening_balance_minor, closing_balance_minor,
                                    debits_minor, credits_minor, entry_count, last_account_sequence)
    select p.ledger_account_id, p_day, a.currency, coalesce(prev.closing_balance_minor, 0),
           coalesce(prev.closing_balance_minor, 0) + p.debits_minor - p.credits_minor,
           p.debits_minor, p.credits_minor, p.entry_count, coalesce(prev.last_account_sequence, 0) + p.entry_count
      from per_account p
      join ledger_accounts a on a.id = p.ledger_account_id
      left join lateral (
        select c.closing_balance_minor, c.last_account_sequence from ledger_checkpoints c
         where c.ledger_account_id = p.ledger_account_id and c.day < p_day
         order by c.day desc limit 1
      ) prev on true
    returning ledger_checkpoints.ledger_account_id, ledger_checkpoints.currency, ledger_checkpoints.debits_minor,
              ledger_checkpoints.credits_minor, ledger_checkpoints.entry_count
  ), today as (
    select c.currency, a.kind, sum(c.debits_minor) as debits_minor, sum(c.credits_minor) as credits_minor,
           sum(c.entry_count) as entry_count, count(*) as accounts
      from checkpoints c join ledger_accounts a on a.id = c.ledger_account_id
     group by c.currency, a.kind
  ), yesterday as (
    select t.currency, t.account_kind, t.closing_balance_minor from ledger_checkpoint_totals t where t.day = p_day - 1
  ), totals as (
    insert into ledger_checkpoint_totals (day, currency, account_kind, opening_balance_minor, closing_balance_minor,
                                          debits_minor, credits_minor, entry_count, accounts)
    select p_day, coalesce(y.currency, d.currency), coalesce(y.account_kind, d.kind), coalesce(y.closing_balance_minor, 0),
           coalesce(y.closing_balance_minor, 0) + coalesce(d.debits_minor, 0) - coalesce(d.credits_minor, 0),
           coalesce(d.debits_minor, 0), coalesce(d.credits_minor, 0), coalesce(d.entry_count, 0), coalesce(d.accounts, 0)
      from yesterday y
      full join today d on d.currency = y.currency and d.kind = y.account_kind
    returning 1
  )
  select r.accounts, r.entry_count into v_accounts, v_entries from day_row r, (select count(*) from totals) t;
  return query select 'closed'::text, v_accounts, v_entries;
end $$;
