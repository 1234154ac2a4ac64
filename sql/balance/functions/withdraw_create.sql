-- The hot path of POST /withdraw as ONE call: claim the idempotency key, place the order
-- (withdraw_place_orders: limits, reservation, order, reservation row, first history row, outbox event), and
-- store the response. Responses are built by the application (one error catalogue) and passed in;
-- this function only picks the one that applies, so the stored reply is byte-for-byte what the
-- client first saw.
create or replace function withdraw_create(
  p_user_id text,
  p_idempotency_key uuid,
  p_request_hash text,
  p_account_id uuid,
  p_to_account_id text,
  p_amount_minor bigint,
  p_currency text,
  p_order_id uuid,
  p_transaction_id uuid,
  p_responses json
) returns table (outcome text, response_status int, response_body json)
language plpgsql as $$
#variable_conflict use_column
declare
  v_key idempotency_keys%rowtype;
  v_outcome text;
begin
  -- A second request with the same key while the first is still running gets 409, not a wait.
  if not pg_try_advisory_xact_lock(hashtextextended(p_user_id || '/' || p_idempotency_key::text, 7)) then
    return query select 'in_flight'::text, null::int, null::json;
    return;
  end if;

  select * into v_key from idempotency_keys k
    where k.user_id = p_user_id and k.idempotency_key = p_idempotency_key;
  if found then
    if v_key.request_hash <> p_request_hash then
      return query select 'key_reused'::text, null::int, null::json;
    else
      return query select 'replay'::text, v_key.response_status, v_key.response_body;
    end if;
    return;
  end if;

  -- the order, its reservation, history and outbox event (or why not): withdraw_place_orders
  select p.outcome into v_outcome
    from withdraw_place_orders(json_build_array(json_build_object(
      'userId', p_user_id, 'accountId', p_account_id, 'toAccountId', p_to_account_id,
      'amountMinor', p_amount_minor::text, 'currency', p_currency, 'orderId', p_order_id,
      'transactionId', p_transaction_id))) p;
  if v_outcome in ('account_not_found', 'forbidden') then
    return query select v_outcome, null::int, null::json;
    return;
  end if;

  -- the reply is stored with the key, business rejections as well: a replay gets the same bytes
  insert into idempotency_keys (user_id, idempotency_key, request_hash, order_id, response_status, response_body)
  values (p_user_id, p_idempotency_key, p_request_hash, case when v_outcome = 'created' then p_order_id end,
          (p_responses -> v_outcome ->> 'status')::int, p_responses -> v_outcome -> 'body');

  return query select v_outcome, (p_responses -> v_outcome ->> 'status')::int, p_responses -> v_outcome -> 'body';
end $$;
