-- A bulk payout's orders, in the caller's transaction (the first of two calls; withdraw_batch_store
-- then stores the reply the application built from these outcomes, in the same transaction, so the
-- orders and the stored reply commit together). Claims the idempotency key as withdraw_create does
-- (the same key space: a key is one request, single or bulk): another request with the key in flight
-- is in_flight, a stored reply is replayed (its exact text), a different request is key_reused.
-- Otherwise every item is placed by withdraw_place_orders (what every withdrawal goes through), in
-- the order given, and gets its own outcome; its lock order is every writer's, so a batch never
-- deadlocks with single withdrawals or another batch.
-- p_items: [{"index", "userId", "accountId", "toAccountId", "amountMinor", "currency", "orderId",
-- "transactionId"}] (only the items the application found valid).
create or replace function withdraw_batch_place(
  p_user_id text,
  p_idempotency_key uuid,
  p_request_hash text,
  p_items jsonb
) returns table (outcome text, item_index int, item_outcome text, response_status int, response_body text)
language plpgsql as $$
#variable_conflict use_column
declare
  v_key idempotency_keys%rowtype;
begin
  if not pg_try_advisory_xact_lock(hashtextextended(p_user_id || '/' || p_idempotency_key::text, 7)) then
    return query select 'in_flight'::text, null::int, null::text, null::int, null::text;
    return;
  end if;
  select * into v_key from idempotency_keys k
   where k.user_id = p_user_id and k.idempotency_key = p_idempotency_key;
  if found then
    if v_key.request_hash <> p_request_hash then
      return query select 'key_reused'::text, null::int, null::text, null::int, null::text;
    else
      return query select 'replay'::text, null::int, null::text, v_key.response_status, v_key.response_body::text;
    end if;
    return;
  end if;

  return query
    select 'placed'::text, (x ->> 'index')::int, p.outcome, null::int, null::text
      from withdraw_place_orders(p_items::json) p
      join jsonb_array_elements(p_items) with ordinality as e(x, k) on k = p.n
     order by p.n;
end $$;
