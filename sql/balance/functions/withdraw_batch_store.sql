-- Stores a bulk payout's reply with its idempotency key, and the batch with its items (what GET
-- /withdraw/batch/{batchId} shows), in the transaction of withdraw_batch_place: the reply is stored
-- as the application sent it (json keeps the text), so a replay is byte-identical.
create or replace function withdraw_batch_store(
  p_user_id text,
  p_idempotency_key uuid,
  p_request_hash text,
  p_batch_id uuid,
  p_items json,
  p_accepted_count int,
  p_response_status int,
  p_response_body json
) returns void
language plpgsql as $$
begin
  insert into withdraw_batches (id, user_id, idempotency_key, item_count, accepted_count, items)
  values (p_batch_id, p_user_id, p_idempotency_key, json_array_length(p_items), p_accepted_count, p_items);
  insert into idempotency_keys (user_id, idempotency_key, request_hash, order_id, response_status, response_body)
  values (p_user_id, p_idempotency_key, p_request_hash, null, p_response_status, p_response_body);
end $$;
