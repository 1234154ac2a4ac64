-- Applies one pending callback by id, in the caller's transaction: the worker's path when a batch
-- failed (gateway_inbox_apply). Nothing when the row is applied, parked, waiting for its retry, or
-- being applied by another transaction right now.
create or replace function gateway_inbox_apply_one(p_inbox_id bigint)
returns table (inbox_id bigint, event_id text, outcome text)
language plpgsql as $$
#variable_conflict use_column
declare
  v_inbox gateway_inbox%rowtype;
  v_outcome text;
begin
  select i.* into v_inbox from gateway_inbox i
   where i.id = p_inbox_id and i.processed_at is null and i.parked_at is null
     and (i.retry_at is null or i.retry_at <= now())
     for update skip locked;
  if v_inbox.id is null then
    return;
  end if;
  v_outcome := gateway_apply_callback(v_inbox);
  update gateway_inbox g set processed_at = now(), outcome = v_outcome, attempts = g.attempts + 1, retry_at = null
   where g.id = v_inbox.id;
  return query select v_inbox.id, v_inbox.event_id, v_outcome;
end $$;
