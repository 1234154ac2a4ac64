-- Records one answer of the provider's status API (recovery asks about processing and manual
-- orders that heard nothing) and acts on it, in one transaction, like gateway_submit_result does for
-- submissions:
--   paid / failed: stored in gateway_inbox as a callback would be (event id
--     'status-query:<tx>:<status>', so asking twice stores it once); the inbox applies it through
--     gateway_apply_callback, the one path for provider outcomes;
--   pending / not_found / unknown: evidence only; a processing order that has been answered
--     `pending` p_pending_max times, or that the provider could not confirm (not_found, unknown)
--     p_unknown_max times, is handed to a human (manual) with every answer as evidence.
-- A manual order is never escalated further: the answers are evidence for the operator.
-- Then the order's next query is scheduled (withdraw_orders.next_query_at): p_now plus
-- p_next_base_ms doubled with every query so far, at most p_next_max_ms. Recovery asks only orders
-- whose time has come (reconcile/recovery.ts); a status change clears the schedule.
-- Returns: answered | manual | pending | unknown (and the counts of each kind of answer so far).
create or replace function gateway_record_status_query(
  p_transaction_id uuid, p_result text, p_failure_code text, p_detail jsonb,
  p_unknown_max int, p_pending_max int, p_now timestamptz, p_next_base_ms int, p_next_max_ms int
) returns table (outcome text, unknown_queries int, pending_queries int, next_query_at timestamptz)
language plpgsql as $$
#variable_conflict use_column
declare
  v_unknown int;
  v_pending int;
  v_status text;
  v_why text;
  v_queries int;
  v_next timestamptz;
begin
  insert into gateway_status_queries (transaction_id, result, detail, created_at)
  values (p_transaction_id, p_result, coalesce(p_detail, '{}'), p_now);

  if p_result in ('paid', 'failed') then
    insert into gateway_inbox (event_id, reference, status, failure_code, occurred_at, payload, signed_at)
    values ('status-query:' || p_transaction_id || ':' || p_result, p_transaction_id::text, p_result, p_failure_code,
            p_now, jsonb_build_object('source', 'status_query', 'detail', coalesce(p_detail, '{}')), p_now)
    on conflict (event_id) do nothing;
    -- the inbox applies the answer in moments; should it not, the order is asked again
    v_next := withdraw_schedule_next_query(p_transaction_id, p_now, p_next_base_ms);
    return query select 'answered'::text, null::int, null::int, v_next;
    return;
  end if;

  select count(*) filter (where q.result in ('not_found', 'unknown')), count(*) filter (where q.result = 'pending'), count(*)
    into v_unknown, v_pending, v_queries
    from gateway_status_queries q where q.transaction_id = p_transaction_id;
  select o.status into v_status from withdraw_orders o where o.transaction_id = p_transaction_id;

  if v_status = 'processing' and p_result = 'pending' and v_pending >= p_pending_max then
    v_why := 'the provider still reports the payout pending after ' || v_pending || ' status queries';
  elsif v_status = 'processing' and p_result <> 'pending' and v_unknown >= p_unknown_max then
    v_why := 'the provider could not confirm the payout after ' || v_unknown || ' status queries';
  end if;
  if v_why is not null then
    perform withdraw_transition(p_transaction_id, array['processing'], 'manual', 'reconciler', 'recovery__stale_processing',
      v_why, (select jsonb_build_object('statusQueries', jsonb_agg(jsonb_build_object(
                'result', q.result, 'detail', q.detail, 'at', q.created_at) order by q.id))
                from gateway_status_queries q where q.transaction_id = p_transaction_id));
  end if;
  -- after the transition (it locks the account first, then the order), so the lock order holds
  v_next := withdraw_schedule_next_query(p_transaction_id, p_now,
    least(p_next_base_ms::double precision * power(2, least(v_queries, 30) - 1), p_next_max_ms)::int);
  if v_why is not null then
    return query select 'manual'::text, v_unknown, v_pending, v_next;
    return;
  end if;
  return query select case when p_result = 'pending' then 'pending' else 'unknown' end, v_unknown, v_pending, v_next;
end $$;
