-- One provider callback (a gateway_inbox row) against the order it names. A callback never moves
-- money against a final state: a contradiction is a reconciliation break for a human. A callback
-- for an order still in init implies the provider accepted it (the callback can arrive before the
-- batch that submitted it records the provider's 202): the order passes through processing first.
create or replace function gateway_apply_callback(p_inbox gateway_inbox) returns text
language plpgsql as $$
declare
  v_reference uuid;
  v_order withdraw_orders%rowtype;
  v_evidence jsonb := jsonb_build_object('inboxId', p_inbox.id, 'eventId', p_inbox.event_id,
    'status', p_inbox.status, 'failureCode', p_inbox.failure_code, 'occurredAt', p_inbox.occurred_at);
begin
  if p_inbox.reference ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    v_reference := p_inbox.reference::uuid;
    v_order := withdraw_lock(v_reference);
  end if;
  if v_order.id is null then
    perform reconciliation_record_break('callback_unknown_reference', 'event:' || p_inbox.event_id, null, null,
      v_reference, null, 'a withdraw order with this reference', 'none', v_evidence);
    return 'unknown_reference';
  end if;

  if p_inbox.status = 'paid' then
    if v_order.status = 'success' then
      return 'duplicate';
    elsif v_order.status = 'failed' then
      perform reconciliation_record_break('callback_contradicts_final', 'order:' || v_order.id, v_order.id,
        v_order.account_id, v_order.transaction_id, v_order.currency, 'failed', 'provider reports paid', v_evidence);
      return 'contradiction';
    end if;
    if v_order.status = 'init' then
      perform withdraw_transition(v_reference, array['init'], 'processing', 'provider', p_inbox.event_id,
        'provider callback implies acceptance', v_evidence);
    end if;
    perform withdraw_transition(v_reference, array['processing', 'manual'], 'success', 'provider', p_inbox.event_id,
      'provider reported paid', v_evidence);
    return 'applied';
  end if;

  -- failed
  if v_order.status = 'failed' then
    return 'duplicate';
  elsif v_order.status = 'success' then
    perform reconciliation_record_break('callback_contradicts_final', 'order:' || v_order.id, v_order.id,
      v_order.account_id, v_order.transaction_id, v_order.currency, 'success', 'provider reports failed', v_evidence);
    -- a reversal after payment: recorded once, and announced (withdraw.reversed) in this transaction;
    -- the order stays success and no money moves until a human decides
    insert into withdraw_reversals (order_id, transaction_id, inbox_id, failure_code)
    values (v_order.id, v_order.transaction_id, p_inbox.id, p_inbox.failure_code)
    on conflict (order_id) do nothing;
    if found then
      insert into outbox (topic, transaction_id, payload)
      values ('withdraw.reversed', v_order.transaction_id, jsonb_build_object(
        'transactionId', v_order.transaction_id, 'orderId', v_order.id, 'accountId', v_order.account_id,
        'userId', v_order.user_id, 'toAccountId', v_order.to_account_id,
        'amountMinor', v_order.amount_minor::text, 'currency', v_order.currency,
        'status', v_order.status, 'event', 'reversed', 'failureCode', p_inbox.failure_code));
    end if;
    return 'contradiction';
  end if;
  -- a callback means the provider took the payout: an order still init was accepted first (the
  -- callback can arrive before the submission's answer is recorded), as for a paid callback
  if v_order.status = 'init' then
    perform withdraw_transition(v_reference, array['init'], 'processing', 'provider', p_inbox.event_id,
      'provider callback implies acceptance', v_evidence);
  end if;
  perform withdraw_transition(v_reference, array['processing', 'manual'], 'failed', 'provider', p_inbox.event_id,
    'provider reported failed', v_evidence, coalesce(p_inbox.failure_code, 'provider_failed'));
  return 'applied';
end $$;
