-- Up Migration
-- Recovery asks the provider about each processing or manual order on a schedule of its own: the
-- first time PROCESSING_STALE_MS after the order entered its status, then with a backoff, each
-- answer that says nothing setting next_query_at (gateway_record_status_query). A status change
-- clears it (withdraw_orders_guard), so the schedule starts over in the new status. The open
-- orders' index leads with (status, next_query_at), so each status's due orders are one range
-- scan: those never asked (next_query_at is null) by updated_at, those asked before by
-- next_query_at. It replaces the (status, updated_at) index one for one (the same entries).
alter table withdraw_orders add column next_query_at timestamptz;
drop index withdraw_orders_open_idx;
create index withdraw_orders_open_idx on withdraw_orders (status, next_query_at nulls first, updated_at)
  where status in ('init', 'processing', 'manual');

-- Reconciliation reads what changed since its previous run: orders by updated_at, deposits by
-- created_at (accounts are reached through them: their money moves only with an order or a credit).
create index withdraw_orders_updated_idx on withdraw_orders (updated_at, id);
create index credits_created_idx on credits (created_at);

-- gateway_record_status_query takes the schedule's backoff and sets next_query_at
drop function if exists gateway_record_status_query(uuid, text, text, jsonb, int, int, timestamptz);
