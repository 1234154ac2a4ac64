-- Up Migration
-- The hot path of POST /withdraw as ONE call: claim the idempotency key, reserve the amount, insert
-- the order, its reservation, its first history row and the outbox event, and store the response.
-- Responses are built by the application (one error catalogue) and passed in; this function only
-- picks the one that applies, so the stored reply is byte-for-byte what the client first saw.
create function withdraw_create(
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

-- A deposit into a wallet, idempotent by the caller's transaction id; the ledger learns of it
-- through the outbox event written in the same transaction.
create function account_credit(
  p_transaction_id uuid,
  p_account_id uuid,
  p_amount_minor bigint,
  p_actor text
) returns table (outcome text, account_id uuid, user_id text, currency text, status text,
                 balance_minor bigint, available_minor bigint, reserved_minor bigint)
language plpgsql as $$
#variable_conflict use_column
declare
  v_account accounts%rowtype;
  v_credit credits%rowtype;
  v_outcome text;
begin
  -- Two credits with the same transaction id on different accounts would both find no credit and
  -- race to insert it (a unique violation, 500); serialized here, the second sees a mismatch.
  perform pg_advisory_xact_lock(hashtextextended('account_credit/' || p_transaction_id::text, 0));
  select * into v_account from accounts a where a.id = p_account_id for update;
  if not found then
    return query select 'account_not_found'::text, null::uuid, null::text, null::text, null::text,
                        null::bigint, null::bigint, null::bigint;
    return;
  end if;

  select * into v_credit from credits c where c.transaction_id = p_transaction_id;
  if found then
    v_outcome := case when v_credit.account_id = p_account_id and v_credit.amount_minor = p_amount_minor
                      then 'replay' else 'mismatch' end;
  elsif v_account.status = 'closed' then
    v_outcome := 'account_unusable';
  else
    insert into credits (transaction_id, account_id, amount_minor, currency, actor)
    values (p_transaction_id, p_account_id, p_amount_minor, v_account.currency, p_actor);
    update accounts a
       set balance_minor = a.balance_minor + p_amount_minor,
           available_minor = a.available_minor + p_amount_minor,
           version = a.version + 1,
           updated_at = now()
     where a.id = p_account_id
    returning * into v_account;
    insert into outbox (topic, transaction_id, payload)
    values ('account.credited', p_transaction_id, jsonb_build_object(
      'transactionId', p_transaction_id, 'accountId', p_account_id, 'userId', v_account.user_id,
      'amountMinor', p_amount_minor::text, 'currency', v_account.currency));
    v_outcome := 'credited';
  end if;

  return query select v_outcome, v_account.id, v_account.user_id, v_account.currency, v_account.status,
                      v_account.balance_minor, v_account.available_minor, v_account.reserved_minor;
end $$;

-- Down Migration
drop function withdraw_create, account_credit;
