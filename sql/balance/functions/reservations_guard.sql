-- A reservation never changes what it holds (account, amount); once captured or released its
-- status is final.
create or replace function reservations_guard() returns trigger language plpgsql as $$
begin
  if new.transaction_id <> old.transaction_id or new.account_id <> old.account_id
     or new.amount_minor <> old.amount_minor then
    raise exception 'reservation % is immutable except for its status', old.transaction_id
      using errcode = 'check_violation', constraint = 'reservations_immutable';
  end if;
  if old.status <> 'held' and new.status <> old.status then
    raise exception 'reservation % is already %', old.transaction_id, old.status
      using errcode = 'check_violation', constraint = 'reservations_final';
  end if;
  new.updated_at := now();
  return new;
end $$;

create or replace trigger reservations_guard before update on reservations
  for each row execute function reservations_guard();
