-- One run of reports__daily_fold: moves at most p_rows_max deltas (the oldest rows of the heap
-- first) into withdraw_daily_rollup, one upsert per (bucket, status, currency). Runs one at a time
-- (the state row's lock); 'not_built' when the rollup has not been built yet (the caller builds it
-- with withdraw_daily_rebuild, then folds). The report reads rollup plus deltas, so a fold changes
-- no figure; it keeps the deltas few.
create or replace function withdraw_daily_fold(p_rows_max int)
returns table (outcome text, folded int, left_over boolean)
language plpgsql as $$
declare
  v_built timestamptz;
  v_folded int;
begin
  select s.built_at into v_built from withdraw_daily_state s for update;
  if v_built is null then
    return query select 'not_built'::text, 0, false;
    return;
  end if;
  with moved as (
    delete from withdraw_daily_deltas d
     where d.ctid = any(array(select x.ctid from withdraw_daily_deltas x limit p_rows_max))
    returning d.bucket, d.status, d.currency, d.orders, d.amount_minor
  ), sums as (
    select m.bucket, m.status, m.currency, sum(m.orders) as orders, sum(m.amount_minor) as amount_minor, count(*) as n
      from moved m
     group by m.bucket, m.status, m.currency
  ), upserted as (
    insert into withdraw_daily_rollup as r (bucket, status, currency, orders, amount_minor)
    select s.bucket, s.status, s.currency, s.orders, s.amount_minor from sums s
    on conflict (bucket, status, currency)
      do update set orders = r.orders + excluded.orders, amount_minor = r.amount_minor + excluded.amount_minor
    returning 1
  )
  select coalesce(sum(s.n), 0)::int into v_folded from sums s;
  update withdraw_daily_state set folded_at = now();
  return query select 'folded'::text, v_folded, v_folded >= p_rows_max;
end $$;
