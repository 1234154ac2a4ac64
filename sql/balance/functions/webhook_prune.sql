-- Deletes outgoing events older than webhook_retention() (and a day) with their deliveries, at most
-- p_batch_size events per call, oldest first (maintenance__prune, jobs/pruning.ts); returns how many
-- events went. The fan-out never looks
-- back further than the retention, so a pruned event is never made again.
create or replace function webhook_prune(p_batch_size int, p_now timestamptz default now()) returns int
language plpgsql as $$
declare
  v_ids uuid[];
begin
  select array_agg(ev.id) into v_ids
    from (select e.id from webhook_events e
           where e.occurred_at < p_now - webhook_retention() - interval '1 day'
           order by e.occurred_at limit p_batch_size) ev;
  if v_ids is null then
    return 0;
  end if;
  delete from webhook_deliveries d where d.event_id = any(v_ids);
  delete from webhook_events e where e.id = any(v_ids);
  return cardinality(v_ids);
end $$;
