-- Only the first pending callback notifies (see outbox_notify for why). A parked row, or one
-- waiting for its retry, is no backlog the drainer is working through: it does not silence others.
create or replace function gateway_inbox_notify() returns trigger language plpgsql as $$
begin
  if not exists (select 1 from gateway_inbox i
                  where i.processed_at is null and i.parked_at is null and i.retry_at is null
                    and i.id < (select min(n.id) from inbox_new_rows n)) then
    perform pg_notify('gateway_inbox', '');
  end if;
  return null;
end $$;

create or replace trigger gateway_inbox_notify after insert on gateway_inbox referencing new table as inbox_new_rows
  for each statement execute function gateway_inbox_notify();
