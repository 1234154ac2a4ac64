-- The fan-out of outgoing events, called by the Balance relay (outbox_relay_balance) in its own
-- transaction with the orders whose state changes it relays. Each change of these orders (a status
-- history row, a recorded reversal) that some endpoint subscribed to when it happened becomes one
-- event (unique per order and type) and one delivery per such endpoint, and those endpoints' delivery
-- jobs are woken. Earlier changes of the same orders are included when still missing: relays may run
-- side by side and claim the rows of one order out of order, and a delivery must never exist before
-- the deliveries of the changes that came first. Costs one probe of a tiny table when no endpoint
-- is registered.
create or replace function webhook_enqueue_events(p_order_ids uuid[]) returns int
language plpgsql as $$
declare
  v_endpoints uuid[];
  v_count int;
begin
  if p_order_ids is null or cardinality(p_order_ids) = 0
     or not exists (select 1 from webhook_endpoints e where e.status in ('active', 'disabled')) then
    return 0;
  end if;

  with changes as (
    select h.order_id, 'withdraw.' || h.to_status as type, h.created_at as occurred_at, null::text as failure_code
      from withdraw_status_history h
     where h.order_id = any(p_order_ids) and h.to_status in ('processing', 'manual', 'success', 'failed')
       and h.created_at > now() - webhook_retention()
    union all
    select r.order_id, 'withdraw.reversed', r.reported_at, r.failure_code
      from withdraw_reversals r
     where r.order_id = any(p_order_ids) and r.reported_at > now() - webhook_retention()
  ), wanted as (
    select c.* from changes c
     where exists (select 1 from webhook_endpoints e
                    where e.status in ('active', 'disabled') and c.type = any(e.event_types) and e.created_at <= c.occurred_at)
  ), events as (
    -- in (order, rank) order, so that concurrent relays take the unique index's locks in one order
    insert into webhook_events (id, order_id, type, rank, occurred_at, data)
    select uuidv7(), o.id, w.type, webhook_event_rank(w.type), w.occurred_at,
           case w.type
             when 'withdraw.failed' then json_build_object(
               'withdrawOrderId', o.id, 'transactionId', o.transaction_id, 'status', 'failed',
               'amount', format_minor(o.amount_minor, o.currency), 'currency', o.currency,
               'fromAccountId', o.account_id, 'toAccountId', o.to_account_id,
               'createdAt', format_utc(o.created_at), 'updatedAt', format_utc(w.occurred_at),
               'failureReason', o.failure_reason)
             when 'withdraw.reversed' then json_build_object(
               'withdrawOrderId', o.id, 'transactionId', o.transaction_id, 'status', 'success',
               'amount', format_minor(o.amount_minor, o.currency), 'currency', o.currency,
               'fromAccountId', o.account_id, 'toAccountId', o.to_account_id,
               'createdAt', format_utc(o.created_at), 'updatedAt', format_utc(w.occurred_at),
               'reversal', json_build_object('reportedAt', format_utc(w.occurred_at), 'failureCode', w.failure_code))
             else json_build_object(
               'withdrawOrderId', o.id, 'transactionId', o.transaction_id, 'status', substr(w.type, 10),
               'amount', format_minor(o.amount_minor, o.currency), 'currency', o.currency,
               'fromAccountId', o.account_id, 'toAccountId', o.to_account_id,
               'createdAt', format_utc(o.created_at), 'updatedAt', format_utc(w.occurred_at))
           end
      from wanted w join withdraw_orders o on o.id = w.order_id
     order by o.id, webhook_event_rank(w.type)
    on conflict (order_id, type) do nothing
    returning id, order_id, type, rank, occurred_at
  ), deliveries as (
    insert into webhook_deliveries (endpoint_id, event_id, order_id, rank)
    select e.id, ev.id, ev.order_id, ev.rank
      from events ev
      join webhook_endpoints e
        on e.status in ('active', 'disabled') and ev.type = any(e.event_types) and e.created_at <= ev.occurred_at
     order by ev.order_id, ev.rank, e.id
    returning endpoint_id
  )
  select count(*)::int, array_agg(distinct d.endpoint_id) into v_count, v_endpoints from deliveries d;

  -- an endpoint backing off after failures is woken when its pause ends, not before
  perform webhook_wake(e.id, greatest(now(), e.next_attempt_at))
     from webhook_endpoints e where e.id = any(v_endpoints) and e.status = 'active' order by e.id;
  return v_count;
end $$;
