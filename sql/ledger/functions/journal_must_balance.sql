-- I4: every journal transaction balances (per currency) and has at least two entries. Checked once
-- per statement over the rows it inserted (a transition table), not once per row at commit:
-- ledger_post writes a batch's journals and their entries in ONE statement, so both triggers see
-- whole journals. A journal and its entries written in separate statements are refused at the
-- first one.
create or replace function journal_must_balance() returns trigger language plpgsql as $$
declare
  v_journals bigint[];
  v_unbalanced text;
begin
  -- a transition table's columns are resolved per statement: each branch names its own table's
  if tg_table_name = 'entries' then
    select array_agg(distinct r.journal_id) into v_journals from new_rows r;
  else
    select array_agg(r.id) into v_journals from new_rows r;
  end if;
  select string_agg(format('%s (%s entries; off by %s)', c.journal_id, c.n, coalesce(c.off, '0')), ', ')
    into v_unbalanced
    from (select t.journal_id, a.n, a.off
            from unnest(v_journals) as t(journal_id)
           cross join lateral (
             select coalesce(sum(g.cnt), 0) as n,
                    string_agg(g.currency || ' ' || g.total, ', ') filter (where g.total <> 0) as off
               from (select e.currency, count(*) as cnt, sum(e.amount_minor) as total
                       from entries e where e.journal_id = t.journal_id group by e.currency) g
           ) a
           where a.n < 2 or a.off is not null) c;
  if v_unbalanced is not null then
    raise exception 'journal transactions do not balance: %', left(v_unbalanced, 500)
      using errcode = 'check_violation', constraint = 'journal_transactions_balanced';
  end if;
  return null;
end $$;

create or replace trigger journal_transactions_balanced after insert on journal_transactions
  referencing new table as new_rows for each statement execute function journal_must_balance();
create or replace trigger entries_balanced after insert on entries
  referencing new table as new_rows for each statement execute function journal_must_balance();
