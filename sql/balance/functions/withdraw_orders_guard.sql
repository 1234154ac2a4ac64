-- A status change must be one of the allowed moves, and what defines the order never changes.
-- updated_at is the time of the last change a client sees (status, failure reason); a change of
-- status also starts recovery's schedule over (next_query_at, see gateway_record_status_query).
create or replace function withdraw_orders_guard() returns trigger language plpgsql as $$
begin
  if new.id <> old.id or new.transaction_id <> old.transaction_id or new.user_id <> old.user_id
     or new.account_id <> old.account_id or new.to_account_id <> old.to_account_id
     or new.amount_minor <> old.amount_minor or new.currency <> old.currency
     or new.created_at <> old.created_at then
    raise exception 'withdraw order % is immutable except for its status', old.id
      using errcode = 'check_violation', constraint = 'withdraw_orders_immutable';
  end if;
  if new.status <> old.status and not exists (
    select 1 from withdraw_transitions t where t.from_status = old.status and t.to_status = new.status
  ) then
    raise exception 'withdraw order %: % -> % is not an allowed transition', old.id, old.status, new.status
      using errcode = 'check_violation', constraint = 'withdraw_orders_transition_allowed';
  end if;
  if new.status is distinct from old.status then
    new.next_query_at := null;
  end if;
  if new.status is distinct from old.status or new.failure_reason is distinct from old.failure_reason then
    new.updated_at := now();
  end if;
  return new;
end $$;

create or replace trigger withdraw_orders_guard before update on withdraw_orders
  for each row execute function withdraw_orders_guard();
