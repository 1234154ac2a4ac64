-- Builds the daily-withdrawals rollup from withdraw_orders: every (bucket, status, currency) counted
-- again, the deltas already counted by that scan discarded. Must run in a REPEATABLE READ (or
-- SERIALIZABLE) transaction: the scan and the delete of deltas then see one snapshot, so an order
-- written by a transaction that commits later is counted once, by the delta it leaves. A fold
-- committed after the snapshot makes this fail with a serialization failure; run it again.
create or replace function withdraw_daily_rebuild() returns table (buckets int, orders bigint)
language plpgsql as $$
declare
  v_buckets int;
begin
  if current_setting('transaction_isolation') not in ('repeatable read', 'serializable') then
    raise exception 'withdraw_daily_rebuild must run in a repeatable read transaction'
      using errcode = 'invalid_transaction_state';
  end if;
  perform 1 from withdraw_daily_state for update;
  delete from withdraw_daily_deltas;
  delete from withdraw_daily_rollup;
  insert into withdraw_daily_rollup (bucket, status, currency, orders, amount_minor)
  select withdraw_daily_bucket(o.created_at), o.status, o.currency, count(*), sum(o.amount_minor)
    from withdraw_orders o
   group by 1, 2, 3;
  get diagnostics v_buckets = row_count;
  update withdraw_daily_state set built_at = now();
  return query select v_buckets, coalesce((select sum(r.orders) from withdraw_daily_rollup r), 0)::bigint;
end $$;
