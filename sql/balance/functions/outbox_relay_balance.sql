-- Claims a batch of the Balance outbox, enqueues one ledger__post job for the events the ledger
-- cares about, marks the batch relayed: one transaction (the queue lives in this database).
create or replace function outbox_relay_balance(p_batch_size int) returns int
language plpgsql as $$
declare
  v_count int;
  v_events jsonb;
  v_statuses jsonb;
begin
  with claimed as (
    select o.id from outbox o where o.relayed_at is null order by o.id limit p_batch_size for update skip locked
  ), marked as (
    update outbox o set relayed_at = now() from claimed c where o.id = c.id
    returning o.id, o.topic, o.transaction_id, o.payload
  )
  select count(*)::int,
         coalesce(jsonb_agg(jsonb_build_object('outboxId', m.id, 'topic', m.topic, 'transactionId', m.transaction_id,
                                               'payload', m.payload) order by m.id)
                  filter (where m.topic in ('withdraw.created', 'withdraw.success', 'withdraw.failed', 'account.credited')),
                  '[]'::jsonb),
         coalesce(jsonb_agg(jsonb_build_object('payload', m.payload)) filter (where m.topic like 'withdraw.%'), '[]'::jsonb)
    into v_count, v_events, v_statuses
    from marked m;
  if jsonb_array_length(v_events) > 0 then
    perform graphile_worker.add_job('ledger__post', json_build_object('events', v_events));
  end if;
  -- outgoing events (webhooks) of the orders whose state changed, fanned out in this transaction
  perform webhook_enqueue_events(array(select (s.value -> 'payload' ->> 'orderId')::uuid from jsonb_array_elements(v_statuses) s));
  -- wake long-polling clients of the orders whose status changed: one NOTIFY per 150 orders
  -- (payloads are limited to 8000 bytes) instead of one per transition
  perform pg_notify('withdraw_status', chunk.ids)
     from (select string_agg(e.value -> 'payload' ->> 'orderId', ',') as ids
             from jsonb_array_elements(v_statuses) with ordinality as e(value, n)
            group by (e.n - 1) / 150) chunk;
  return v_count;
end $$;
