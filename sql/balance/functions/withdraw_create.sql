-- The hot path of POST /withdraw as ONE call: claim the idempotency key, check the limits, reserve
-- the amount, insert the order, its reservation, its first history row and the outbox event, and
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
  v_account accounts%rowtype;
  v_outcome text;
  v_order_max bigint;
  v_daily_max bigint;
  v_used bigint;
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

  -- Limits, checked inside the reservation transaction. The daily limit serializes one user's
  -- withdrawals in one currency (an advisory lock), so concurrent requests cannot both pass.
  select coalesce(a.withdraw_order_max_minor, d.order_max_minor), coalesce(a.withdraw_daily_max_minor, d.daily_max_minor)
    into v_order_max, v_daily_max
    from accounts a left join withdraw_limit_defaults d on d.currency = a.currency
   where a.id = p_account_id and a.user_id = p_user_id and a.currency = p_currency;
  if v_order_max is not null and p_amount_minor > v_order_max then
    v_outcome := 'limit_exceeded';
  elsif v_daily_max is not null then
    perform pg_advisory_xact_lock(hashtextextended('withdraw-limit/' || p_user_id || '/' || p_currency, 0));
    select coalesce(sum(o.amount_minor), 0) into v_used from withdraw_orders o
     where o.user_id = p_user_id and o.currency = p_currency
       and o.created_at > now() - interval '24 hours' and o.status <> 'failed';
    if v_used + p_amount_minor > v_daily_max then
      v_outcome := 'limit_exceeded';
    end if;
  end if;

  if v_outcome is null then
    -- The reservation: guarded so that available never goes below zero (and by a CHECK as well).
    update accounts a
       set available_minor = a.available_minor - p_amount_minor,
           reserved_minor = a.reserved_minor + p_amount_minor,
           version = a.version + 1,
           updated_at = now()
     where a.id = p_account_id and a.user_id = p_user_id and a.currency = p_currency
       and a.status = 'active' and a.available_minor >= p_amount_minor
    returning * into v_account;

    if not found then
      select * into v_account from accounts a where a.id = p_account_id;
      if not found then
        return query select 'account_not_found'::text, null::int, null::json;
        return;
      elsif v_account.user_id <> p_user_id then
        return query select 'forbidden'::text, null::int, null::json;
        return;
      elsif v_account.status <> 'active' or v_account.currency <> p_currency then
        v_outcome := 'account_unusable';
      else
        v_outcome := 'insufficient_funds';
      end if;
    end if;
  end if;

  if v_outcome is not null then
    -- Business rejections are stored and replayed like successes.
    insert into idempotency_keys (user_id, idempotency_key, request_hash, order_id, response_status, response_body)
    values (p_user_id, p_idempotency_key, p_request_hash, null,
            (p_responses -> v_outcome ->> 'status')::int, p_responses -> v_outcome -> 'body');
    return query select v_outcome, (p_responses -> v_outcome ->> 'status')::int, p_responses -> v_outcome -> 'body';
    return;
  end if;

  insert into withdraw_orders (id, transaction_id, user_id, account_id, to_account_id, amount_minor, currency, status)
  values (p_order_id, p_transaction_id, p_user_id, p_account_id, p_to_account_id, p_amount_minor, p_currency, 'init');

  insert into reservations (transaction_id, account_id, amount_minor, status)
  values (p_transaction_id, p_account_id, p_amount_minor, 'held');

  insert into withdraw_status_history (order_id, from_status, to_status, actor, actor_id, reason)
  values (p_order_id, null, 'init', 'api', p_user_id, 'withdraw requested');

  insert into outbox (topic, transaction_id, payload)
  values ('withdraw.created', p_transaction_id, jsonb_build_object(
    'transactionId', p_transaction_id, 'orderId', p_order_id, 'accountId', p_account_id,
    'userId', p_user_id, 'toAccountId', p_to_account_id, 'amountMinor', p_amount_minor::text,
    'currency', p_currency));

  insert into idempotency_keys (user_id, idempotency_key, request_hash, order_id, response_status, response_body)
  values (p_user_id, p_idempotency_key, p_request_hash, p_order_id,
          (p_responses -> 'created' ->> 'status')::int, p_responses -> 'created' -> 'body');

  return query select 'created'::text, (p_responses -> 'created' ->> 'status')::int, p_responses -> 'created' -> 'body';
end $$;
