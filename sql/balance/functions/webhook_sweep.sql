-- The safety net of deliveries (a cron, once a minute): an active endpoint with deliveries waiting
-- and no delivery job (a job lost with a worker, a lease run out) is woken, when its pause ends.
-- Reads the endpoints (a small table) and one index probe each. Returns how many it woke.
create or replace function webhook_sweep() returns int
language plpgsql as $$
declare
  v_count int := 0;
  v_endpoint webhook_endpoints%rowtype;
begin
  for v_endpoint in
    select e.* from webhook_endpoints e
     where e.status = 'active'
       and exists (select 1 from webhook_deliveries d
                    where d.endpoint_id = e.id and d.status = 'pending' and d.next_attempt_at <= now()
                      and (d.lease_until is null or d.lease_until <= now()))
       and not exists (select 1 from graphile_worker.jobs j where j.key = 'webhook-deliver:' || e.id)
     order by e.id
  loop
    perform webhook_wake(v_endpoint.id, greatest(now(), v_endpoint.next_attempt_at));
    v_count := v_count + 1;
  end loop;
  return v_count;
end $$;
