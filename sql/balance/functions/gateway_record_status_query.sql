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
-- Returns: answered | manual | pending | unknown (and the counts of each kind of answer so far).
create or replace function gateway_record_status_query(
  p_transaction_id uuid, p_result text, p_failure_code text, p_detail jsonb,
  p_unknown_max int, p_pending_max int, p_now timestamptz default now()
) returns table (outcome text, unknown_queries int, pending_queries int)
language plpgsql as $$
#variable_conflict use_column
declare
  v_unknown int;
  v_pending int;
  v_status text;
  v_why text;
begin
  insert into gateway_status_queries (transaction_id, result, detail, created_at)
  values (p_transaction_id, p_result, coalesce(p_detail, '{}'), p_now);

  if p_result in ('paid', 'failed') then
    insert into gateway_inbox (event_id, reference, status, failure_code, occurred_at, payload, signed_at)
    values ('status-query:' || p_transaction_id || ':' || p_result, p_transaction_id::text, p_result, p_failure_code,
            p_now, jsonb_build_object('source', 'status_query', 'detail', coalesce(p_detail, '{}')), p_now)
    on conflict (event_id) do nothing;
    return query select 'answered'::text, null::int, null::int;
    return;
  end if;

  select count(*) filter (where q.result in ('not_found', 'unknown')), count(*) filter (where q.result = 'pending')
    into v_unknown, v_pending
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
    return query select 'manual'::text, v_unknown, v_pending;
    return;
  end if;
  return query select case when p_result = 'pending' then 'pending' else 'unknown' end, v_unknown, v_pending;
end $$;
