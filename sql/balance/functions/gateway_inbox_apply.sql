-- Applies a batch of pending callbacks in one transaction. Rows are taken in account order so
-- that account locks are always acquired in ascending order (no deadlocks between batches). Parked
-- rows, and rows waiting for their retry, are not taken. When the batch fails, the worker applies
-- its rows one at a time (gateway_inbox_apply_one) and records the failing one
-- (gateway_inbox_record_failure), so one bad row never stalls the rest.
create or replace function gateway_inbox_apply(p_batch_size int)
returns table (inbox_id bigint, event_id text, outcome text)
language plpgsql as $$
#variable_conflict use_column
declare
  v_inbox gateway_inbox%rowtype;
  v_outcome text;
begin
  for v_inbox in
    select i.* from gateway_inbox i
      left join withdraw_orders o
        on o.transaction_id = case when i.reference ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                                   then i.reference::uuid end
     where i.processed_at is null and i.parked_at is null and (i.retry_at is null or i.retry_at <= now())
     order by o.account_id nulls first, i.id
     limit p_batch_size
       for update of i skip locked
  loop
    v_outcome := gateway_apply_callback(v_inbox);
    update gateway_inbox g set processed_at = now(), outcome = v_outcome, attempts = g.attempts + 1, retry_at = null
     where g.id = v_inbox.id;
    return query select v_inbox.id, v_inbox.event_id, v_outcome;
  end loop;
end $$;
