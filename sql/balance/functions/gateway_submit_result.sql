-- Records one submission attempt and acts on it, in one transaction: accepted → processing,
-- rejected → failed (released), unknown → a retry job at the backoff time, or manual once the
-- attempts are spent. Money is never released while the outcome is unknown. Returns what it did
-- (outcome: processing | failed | manual | retry) and, for a transition, withdraw_transition's
-- outcome (changed | unchanged | conflict | not_found).
create or replace function gateway_submit_result(
  p_transaction_id uuid, p_result text, p_http_status int, p_detail jsonb, p_duration_ms int,
  p_attempts_max int, p_retry_base_ms int, p_retry_max_ms int, p_failure_code text default null
) returns table (outcome text, transition text, attempt int, retry_at timestamptz)
language plpgsql as $$
#variable_conflict use_column
declare
  v_attempt int;
  v_delay_ms double precision;
  v_retry_at timestamptz;
  v_transition text;
  v_evidence jsonb;
begin
  insert into gateway_submit_attempts (transaction_id, result, http_status, detail, duration_ms)
  values (p_transaction_id, p_result, p_http_status, coalesce(p_detail, '{}'), p_duration_ms);
  select count(*) into v_attempt from gateway_submit_attempts a
   where a.transaction_id = p_transaction_id and a.result = 'unknown';
  v_evidence := jsonb_build_object('result', p_result, 'httpStatus', p_http_status, 'detail', p_detail,
                                   'unknownAttempts', v_attempt);

  if p_result = 'accepted' then
    select t.outcome into v_transition from withdraw_transition(p_transaction_id, array['init'], 'processing', 'job',
      'gateway__submit', 'provider accepted the payout', v_evidence) t;
    return query select 'processing'::text, v_transition, v_attempt, null::timestamptz;
  elsif p_result = 'rejected' then
    select t.outcome into v_transition from withdraw_transition(p_transaction_id, array['init'], 'failed', 'job',
      'gateway__submit', 'provider rejected the payout', v_evidence, coalesce(p_failure_code, 'provider_rejected')) t;
    return query select 'failed'::text, v_transition, v_attempt, null::timestamptz;
  elsif v_attempt >= p_attempts_max then
    select t.outcome into v_transition from withdraw_transition(p_transaction_id, array['init'], 'manual', 'job',
      'gateway__submit', 'outcome unknown after ' || v_attempt || ' attempts', v_evidence) t;
    return query select 'manual'::text, v_transition, v_attempt, null::timestamptz;
  else
    -- exponential backoff with jitter (scheduling only; no money here)
    v_delay_ms := least(p_retry_base_ms * power(2, v_attempt - 1), p_retry_max_ms) * (0.5 + random() / 2);
    v_retry_at := now() + make_interval(secs => v_delay_ms / 1000.0);
    perform graphile_worker.add_job('gateway__submit',
      json_build_object('transactionId', p_transaction_id, 'source', 'retry'),
      run_at := v_retry_at, job_key := 'gateway-submit:' || p_transaction_id, job_key_mode := 'replace');
    return query select 'retry'::text, null::text, v_attempt, v_retry_at;
  end if;
end $$;
