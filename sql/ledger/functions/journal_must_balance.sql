-- I4: every journal transaction balances (per currency) and has at least two entries. Checked at
-- commit, once the whole transaction is written.
create or replace function journal_must_balance() returns trigger language plpgsql as $$
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

-- constraint triggers cannot be replaced in place: dropped and created again (one transaction)
drop trigger if exists journal_transactions_balanced on journal_transactions;
create constraint trigger journal_transactions_balanced after insert on journal_transactions
  deferrable initially deferred for each row execute function journal_must_balance();
drop trigger if exists entries_balanced on entries;
create constraint trigger entries_balanced after insert on entries
  deferrable initially deferred for each row execute function journal_must_balance();
