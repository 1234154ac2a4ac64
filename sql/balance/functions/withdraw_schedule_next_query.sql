-- Sets when recovery asks the provider about an open order next (p_now plus p_delay_ms), and
-- returns that time; nothing for an order that is final by now. Only next_query_at changes, so the
-- order's updated_at stays what the client saw (withdraw_orders_guard).
create or replace function withdraw_schedule_next_query(p_transaction_id uuid, p_now timestamptz, p_delay_ms int)
returns timestamptz
language sql as $$
  update withdraw_orders o set next_query_at = p_now + make_interval(secs => p_delay_ms / 1000.0)
   where o.transaction_id = p_transaction_id and o.status in ('processing', 'manual')
  returning o.next_query_at
$$;
