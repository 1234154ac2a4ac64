-- Only the first unrelayed row notifies (see the Balance DB's outbox_notify for why).
create or replace function outbox_notify() returns trigger language plpgsql as $$
begin
  if not exists (select 1 from outbox o
                  where o.relayed_at is null and o.id < (select min(n.id) from outbox_new_rows n)) then
    perform pg_notify('ledger_outbox', '');
  end if;
  return null;
end $$;

create or replace trigger outbox_notify after insert on outbox referencing new table as outbox_new_rows
  for each statement execute function outbox_notify();
