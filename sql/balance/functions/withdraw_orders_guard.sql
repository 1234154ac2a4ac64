-- A status change must be one of the allowed moves, and what defines the order never changes.
-- Every update moves updated_at, except one that changes nothing but recovery's schedule
-- (next_query_at, withdraw_schedule_next_query): asking the provider is not a change of the order,
-- and an order's age in its status must survive the questions. A change of status starts the
-- schedule over.
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
  if new.next_query_at is distinct from old.next_query_at
     and (to_jsonb(new) - 'next_query_at') = (to_jsonb(old) - 'next_query_at') then
    return new;
  end if;
  new.updated_at := now();
  return new;
end $$;

create or replace trigger withdraw_orders_guard before update on withdraw_orders
  for each row execute function withdraw_orders_guard();
