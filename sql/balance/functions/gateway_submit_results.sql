-- Many submission answers in ONE transaction: a gateway__submit_batch job calls the provider for a
-- batch of held withdrawals concurrently, then records every answer with its consequence here.
-- Rows are applied in account order, the lock order of every other batch (see withdraw_lock), so
-- batches cannot deadlock each other.
create or replace function gateway_submit_results(
  p_results jsonb, p_attempts_max int, p_retry_base_ms int, p_retry_max_ms int
) returns table (transaction_id uuid, outcome text, transition text, attempt int, retry_at timestamptz)
language plpgsql as $$
#variable_conflict use_column
declare
  v_result record;
begin
  for v_result in
    select (r ->> 'transactionId')::uuid as tx, r ->> 'result' as result, (r ->> 'httpStatus')::int as http_status,
           coalesce(r -> 'detail', '{}'::jsonb) as detail, (r ->> 'durationMs')::int as duration_ms,
           r ->> 'failureCode' as failure_code
      from jsonb_array_elements(p_results) r
      join withdraw_orders o on o.transaction_id = (r ->> 'transactionId')::uuid
     order by o.account_id, o.transaction_id
  loop
    return query
      select v_result.tx, s.outcome, s.transition, s.attempt, s.retry_at
        from gateway_submit_result(v_result.tx, v_result.result, v_result.http_status, v_result.detail,
                                   v_result.duration_ms, p_attempts_max, p_retry_base_ms, p_retry_max_ms,
                                   v_result.failure_code) s;
  end loop;
end $$;
