-- One ledger account's balance at an instant (entries posted before p_at) and the sequence of the
-- last such entry (0, and a zero balance, before its first), read as checkpoint plus tail: the
-- account's last checkpoint of a day before p_at's UTC day, then at most that day's entries (or,
-- for a day not closed yet, the entries since the last checkpoint). Relies on created_at never
-- decreasing along an account's sequence (sql/README.md, "Ledger checkpoints").
create or replace function ledger_account_balance_at(p_ledger_account_id bigint, p_at timestamptz)
returns table (balance_minor bigint, account_sequence bigint)
language plpgsql stable as $$
#variable_conflict use_column
declare
  v_day date := (p_at at time zone 'UTC')::date;
  v_balance bigint := 0;
  v_sequence bigint := 0;
  v_upper bigint;
  v_day_closed boolean;
begin
  if p_at = '-infinity' then
    return query select 0::bigint, 0::bigint;
    return;
  end if;
  select c.closing_balance_minor, c.last_account_sequence into v_balance, v_sequence
    from ledger_checkpoints c
   where c.ledger_account_id = p_ledger_account_id and c.day < v_day
   order by c.day desc limit 1;
  v_balance := coalesce(v_balance, 0);
  v_sequence := coalesce(v_sequence, 0);
  v_day_closed := exists (select 1 from ledger_checkpoint_days d where d.day = v_day);
  if not v_day_closed and exists (select 1 from ledger_checkpoint_days d where d.day > v_day) then
    -- before the first closed day, which is the day of the ledger's first entry: nothing yet
    return query select 0::bigint, 0::bigint;
    return;
  end if;
  if v_day_closed then
    select c.last_account_sequence into v_upper from ledger_checkpoints c
     where c.ledger_account_id = p_ledger_account_id and c.day = v_day;
    if v_upper is null then
      -- closed, and no entries that day: the balance is the previous checkpoint's
      return query select v_balance, v_sequence;
      return;
    end if;
  end if;
  return query
    select coalesce(last_entry.current_balance_minor, v_balance), coalesce(last_entry.account_sequence, v_sequence)
      from (select 1) one
      left join lateral (
        select e.current_balance_minor, e.account_sequence from entries e
         where e.ledger_account_id = p_ledger_account_id and e.account_sequence > v_sequence
           and (v_upper is null or e.account_sequence <= v_upper) and e.created_at < p_at
         order by e.account_sequence desc limit 1
      ) last_entry on true;
end $$;
