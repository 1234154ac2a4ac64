-- Takes up to p_limit deliveries of one endpoint to send now, less those already in flight (so the
-- endpoint never has more than p_limit requests open), each for p_lease_ms: the head of its
-- (endpoint, order) chain, due, not in flight. Nothing when the endpoint is not active or is
-- pausing after failures. The endpoint row is locked for the claim only, so two workers claiming
-- for one endpoint take turns and the bound holds.
create or replace function webhook_claim_deliveries(p_endpoint_id uuid, p_limit int, p_lease_ms int)
returns table (delivery_id bigint, event_id uuid, type text, occurred_at timestamptz, data json, attempts int,
               url text, secret text)
language plpgsql as $$
#variable_conflict use_column
declare
  v_endpoint webhook_endpoints%rowtype;
  v_in_flight int;
begin
  select * into v_endpoint from webhook_endpoints e
   where e.id = p_endpoint_id and e.status = 'active' and e.next_attempt_at <= now()
     for update;
  if not found then
    return;
  end if;
  select count(*)::int into v_in_flight from webhook_deliveries d
   where d.endpoint_id = p_endpoint_id and d.status = 'pending' and d.lease_until > now();
  if v_in_flight >= p_limit then
    return;
  end if;
  return query
    with heads as (
      select d.id from webhook_deliveries d
       where d.endpoint_id = p_endpoint_id and d.status = 'pending' and d.next_attempt_at <= now()
         and (d.lease_until is null or d.lease_until <= now())
         and not exists (select 1 from webhook_deliveries p
                          where p.endpoint_id = d.endpoint_id and p.order_id = d.order_id and p.status = 'pending'
                            and p.rank < d.rank)
       order by d.next_attempt_at, d.id
       limit p_limit - v_in_flight
         for update skip locked
    ), leased as (
      update webhook_deliveries d
         set lease_until = now() + make_interval(secs => p_lease_ms / 1000.0),
             attempts = d.attempts + 1,
             first_attempt_at = coalesce(d.first_attempt_at, now()),
             last_attempt_at = now()
        from heads h where d.id = h.id
      returning d.id, d.event_id, d.attempts
    )
    select l.id, l.event_id, ev.type, ev.occurred_at, ev.data, l.attempts, v_endpoint.url, v_endpoint.secret
      from leased l join webhook_events ev on ev.id = l.event_id
     order by l.id;
end $$;
