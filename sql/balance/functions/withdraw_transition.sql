-- Every transition: conditional on the expected states, with money moved (success captures the
-- reservation, failed releases it), the history row and the outbox event, all in the caller's
-- transaction.
create or replace function withdraw_transition(
  p_transaction_id uuid,
  p_from text[],
  p_to text,
  p_actor text,
  p_actor_id text,
  p_reason text,
  p_evidence jsonb default null,
  p_failure_reason text default null
) returns table (outcome text, order_id uuid, previous_status text, status text)
language plpgsql as $$
#variable_conflict use_column
declare
  v_order withdraw_orders%rowtype;
  v_reservation reservations%rowtype;
begin
  v_order := withdraw_lock(p_transaction_id);
  if v_order.id is null then
    return query select 'not_found'::text, null::uuid, null::text, null::text;
    return;
  end if;
  if v_order.status = p_to then
    return query select 'unchanged'::text, v_order.id, v_order.status, v_order.status;
    return;
  end if;
  if not (v_order.status = any (p_from)) then
    return query select 'conflict'::text, v_order.id, v_order.status, v_order.status;
    return;
  end if;

  if p_to in ('success', 'failed') then
    update reservations r
       set status = case when p_to = 'success' then 'captured' else 'released' end
     where r.transaction_id = p_transaction_id and r.status = 'held'
    returning * into v_reservation;
    if not found then
      raise exception 'withdraw %: its reservation is not held', p_transaction_id
        using errcode = 'check_violation', constraint = 'reservations_held_until_final';
    end if;
    if p_to = 'success' then
      update accounts a
         set balance_minor = a.balance_minor - v_reservation.amount_minor,
             reserved_minor = a.reserved_minor - v_reservation.amount_minor,
             version = a.version + 1, updated_at = now()
       where a.id = v_reservation.account_id;
    else
      update accounts a
         set available_minor = a.available_minor + v_reservation.amount_minor,
             reserved_minor = a.reserved_minor - v_reservation.amount_minor,
             version = a.version + 1, updated_at = now()
       where a.id = v_reservation.account_id;
    end if;
  end if;

  update withdraw_orders o
     set status = p_to,
         failure_reason = case when p_to = 'failed' then coalesce(p_failure_reason, o.failure_reason, p_reason)
                               else o.failure_reason end
   where o.id = v_order.id;

  insert into withdraw_status_history (order_id, from_status, to_status, actor, actor_id, reason, evidence)
  values (v_order.id, v_order.status, p_to, p_actor, p_actor_id, p_reason, p_evidence);

  insert into outbox (topic, transaction_id, payload)
  values ('withdraw.' || p_to, p_transaction_id, jsonb_build_object(
    'transactionId', p_transaction_id, 'orderId', v_order.id, 'accountId', v_order.account_id,
    'userId', v_order.user_id, 'toAccountId', v_order.to_account_id,
    'amountMinor', v_order.amount_minor::text, 'currency', v_order.currency,
    'fromStatus', v_order.status, 'status', p_to, 'actor', p_actor,
    'failureReason', case when p_to = 'failed' then coalesce(p_failure_reason, p_reason) end));

  -- long-polling clients are woken by the relay, once per batch (see outbox_relay_balance)
  return query select 'changed'::text, v_order.id, v_order.status, p_to;
end $$;
