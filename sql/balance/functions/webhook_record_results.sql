-- Records what one round of sends to an endpoint got, and schedules the endpoint's next round, in
-- one transaction. p_results: [{"deliveryId", "delivered": bool, "statusCode": int|null,
-- "error": text|null}]. A delivered delivery is done, and the next of its order becomes the head. A
-- failed one is retried after an exponential backoff with jitter (base × 2^(attempts-1), at most
-- p_retry_max_ms), or given up (failed, kept for an operator to replay) once its first attempt is
-- older than p_horizon_ms; its order's later deliveries wait behind it. The endpoint: any success
-- clears its failures; a round with failures only pauses it (the same backoff, by its consecutive
-- failed rounds), and after failing for p_disable_after_ms without a success it is disabled, with
-- the reason. Called with no results, it only schedules. Returns when the endpoint runs next (null:
-- nothing to do) and whether it was disabled by this call.
create or replace function webhook_record_results(
  p_endpoint_id uuid,
  p_results jsonb,
  p_retry_base_ms int,
  p_retry_max_ms int,
  p_horizon_ms bigint,
  p_disable_after_ms bigint
) returns table (next_run_at timestamptz, disabled boolean)
language plpgsql as $$
#variable_conflict use_column
declare
  v_delivered int;
  v_failed int;
  v_last_error text;
  v_endpoint webhook_endpoints%rowtype;
  v_disabled boolean := false;
  v_next timestamptz;
begin
  -- data-modifying CTEs run once and to completion: `later` moves the waiting deliveries of the
  -- orders whose head failed behind that head's retry (so they are not due, and not scanned, before)
  with results as (
    select (r ->> 'deliveryId')::bigint as id, (r ->> 'delivered')::boolean as delivered,
           (r ->> 'statusCode')::int as status_code, left(r ->> 'error', 500) as error
      from jsonb_array_elements(coalesce(p_results, '[]'::jsonb)) r
  ), updated as (
    update webhook_deliveries d
       set status = case when r.delivered then 'delivered'
                         when now() - d.first_attempt_at >= make_interval(secs => p_horizon_ms / 1000.0) then 'failed'
                         else 'pending' end,
           delivered_at = case when r.delivered then now() end,
           lease_until = null,
           last_status_code = r.status_code,
           last_error = case when r.delivered then null else r.error end,
           next_attempt_at = case when r.delivered then d.next_attempt_at
             else now() + make_interval(secs => least(p_retry_max_ms::float8,
                    p_retry_base_ms * power(2, least(d.attempts - 1, 30))) * (0.5 + random() / 2) / 1000.0) end
      from results r
     where d.id = r.id and d.endpoint_id = p_endpoint_id and d.status = 'pending'
    returning d.order_id, d.rank, d.status, d.next_attempt_at, r.delivered, r.error
  ), later as (
    update webhook_deliveries w
       set next_attempt_at = greatest(w.next_attempt_at, u.next_attempt_at)
      from updated u
     where u.status = 'pending' and w.endpoint_id = p_endpoint_id and w.order_id = u.order_id
       and w.status = 'pending' and w.rank > u.rank
  )
  select count(*) filter (where u.delivered)::int, count(*) filter (where not u.delivered)::int,
         max(u.error) filter (where not u.delivered)
    into v_delivered, v_failed, v_last_error
    from updated u;

  select * into v_endpoint from webhook_endpoints e where e.id = p_endpoint_id for update;
  if not found then
    return query select null::timestamptz, false;
    return;
  end if;
  if v_delivered > 0 then
    update webhook_endpoints e
       set consecutive_failures = 0, failing_since = null, next_attempt_at = now(), last_success_at = now(), updated_at = now()
     where e.id = p_endpoint_id
    returning * into v_endpoint;
  elsif v_failed > 0 then
    update webhook_endpoints e
       set consecutive_failures = e.consecutive_failures + 1,
           failing_since = coalesce(e.failing_since, now()),
           next_attempt_at = now() + make_interval(secs => least(p_retry_max_ms::float8,
                               p_retry_base_ms * power(2, least(e.consecutive_failures, 30))) * (0.5 + random() / 2) / 1000.0),
           updated_at = now()
     where e.id = p_endpoint_id
    returning * into v_endpoint;
    if v_endpoint.status = 'active'
       and v_endpoint.failing_since <= now() - make_interval(secs => p_disable_after_ms / 1000.0) then
      update webhook_endpoints e
         set status = 'disabled', updated_at = now(),
             status_reason = format('disabled at %s: failing since %s, %s failed rounds without a success; last error: %s',
                                    format_utc(now()), format_utc(e.failing_since), e.consecutive_failures,
                                    coalesce(v_last_error, 'unknown'))
       where e.id = p_endpoint_id
      returning * into v_endpoint;
      v_disabled := true;
    end if;
  end if;

  if v_endpoint.status <> 'active' then
    return query select null::timestamptz, v_disabled;
    return;
  end if;
  -- the next round: the earliest head of a chain not in flight, no earlier than the endpoint's pause
  select d.next_attempt_at into v_next from webhook_deliveries d
   where d.endpoint_id = p_endpoint_id and d.status = 'pending' and (d.lease_until is null or d.lease_until <= now())
     and not exists (select 1 from webhook_deliveries p
                      where p.endpoint_id = d.endpoint_id and p.order_id = d.order_id and p.status = 'pending'
                        and p.rank < d.rank)
   order by d.next_attempt_at
   limit 1;
  if v_next is not null then
    v_next := greatest(v_next, v_endpoint.next_attempt_at, now());
    perform webhook_wake(p_endpoint_id, v_next);
  end if;
  return query select v_next, v_disabled;
end $$;
