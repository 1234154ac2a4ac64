-- Records that applying one callback failed (p_error: what the database said): one more attempt,
-- the error kept on the row, and a retry after p_retry_base_ms doubled with every attempt (at most
-- p_retry_max_ms); after p_park_after attempts the row is parked instead: the queue no longer takes
-- it, and an open break (inbox_parked, subject inbox:<id>) shows it to an operator with its error.
-- Returns retry | parked | gone (the row was applied or parked meanwhile).
create or replace function gateway_inbox_record_failure(
  p_inbox_id bigint, p_error text, p_park_after int, p_retry_base_ms int, p_retry_max_ms int
) returns text
language plpgsql as $$
declare
  v_inbox gateway_inbox%rowtype;
  v_reference uuid;
begin
  update gateway_inbox g
     set attempts = g.attempts + 1, last_error = left(p_error, 2000),
         retry_at = now() + make_interval(secs => least(p_retry_base_ms * power(2, g.attempts), p_retry_max_ms) / 1000.0),
         parked_at = case when g.attempts + 1 >= p_park_after then now() end
   where g.id = p_inbox_id and g.processed_at is null and g.parked_at is null
  returning g.* into v_inbox;
  if v_inbox.id is null then
    return 'gone';
  end if;
  if v_inbox.parked_at is null then
    return 'retry';
  end if;
  if v_inbox.reference ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    v_reference := v_inbox.reference::uuid;
  end if;
  perform reconciliation_record_break('inbox_parked', 'inbox:' || v_inbox.id,
    (select o.id from withdraw_orders o where o.transaction_id = v_reference),
    (select o.account_id from withdraw_orders o where o.transaction_id = v_reference),
    v_reference, (select o.currency from withdraw_orders o where o.transaction_id = v_reference),
    'the callback applied', 'failed ' || v_inbox.attempts || ' times: ' || left(p_error, 500),
    jsonb_build_object('inboxId', v_inbox.id, 'eventId', v_inbox.event_id, 'status', v_inbox.status,
                       'attempts', v_inbox.attempts, 'lastError', v_inbox.last_error));
  return 'parked';
end $$;
