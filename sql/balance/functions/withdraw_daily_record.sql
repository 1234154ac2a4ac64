-- Keeps the daily-withdrawals rollup exact in the transaction that changes an order: an inserted
-- order adds +1 to its (bucket, status, currency), a status change moves it (-1 from the old status,
-- +1 to the new), a deleted order (none is, today) removes it. Appends to withdraw_daily_deltas
-- only; reports__daily_fold moves the deltas into withdraw_daily_rollup.
create or replace function withdraw_daily_record() returns trigger language plpgsql as $$
begin
  if tg_op = 'INSERT' then
    insert into withdraw_daily_deltas (bucket, status, currency, orders, amount_minor)
    values (withdraw_daily_bucket(new.created_at), new.status, new.currency, 1, new.amount_minor);
  elsif tg_op = 'UPDATE' then
    insert into withdraw_daily_deltas (bucket, status, currency, orders, amount_minor)
    values (withdraw_daily_bucket(old.created_at), old.status, old.currency, -1, -old.amount_minor),
           (withdraw_daily_bucket(new.created_at), new.status, new.currency, 1, new.amount_minor);
  else
    insert into withdraw_daily_deltas (bucket, status, currency, orders, amount_minor)
    values (withdraw_daily_bucket(old.created_at), old.status, old.currency, -1, -old.amount_minor);
  end if;
  return null;
end $$;

create or replace trigger withdraw_daily_record_insert after insert or delete on withdraw_orders
  for each row execute function withdraw_daily_record();

create or replace trigger withdraw_daily_record_status after update of status on withdraw_orders
  for each row when (old.status is distinct from new.status) execute function withdraw_daily_record();
