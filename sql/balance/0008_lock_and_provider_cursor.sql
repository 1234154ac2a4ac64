-- Up Migration
-- 1. The order row is locked FOR NO KEY UPDATE, not FOR UPDATE. Rows that reference an order
--    (gateway_submit_attempts, gateway_status_queries) take FOR KEY SHARE on it through their
--    foreign key; FOR UPDATE conflicts with that and made a cycle possible: a submission batch
--    inserting an attempt (key share on the order), then waiting for the account, against a
--    callback batch holding the account and waiting for the order. A status update changes no
--    key column, so NO KEY UPDATE is all a transition needs.
create or replace function withdraw_lock(p_transaction_id uuid) returns withdraw_orders
language plpgsql as $$
declare
  v_account_id uuid;
  v_order withdraw_orders%rowtype;
begin
  select o.account_id into v_account_id from withdraw_orders o where o.transaction_id = p_transaction_id;
  if not found then
    return null;
  end if;
  perform 1 from accounts a where a.id = v_account_id for no key update;
  select * into v_order from withdraw_orders o where o.transaction_id = p_transaction_id for no key update;
  return v_order;
end $$;

-- 2. Provider checks of reconciliation keep their own cursor: a run checks final orders after it
--    in update order, and advances it only past the orders the provider actually answered for.
alter table reconciliation_runs add column provider_checked_until timestamptz;
alter table reconciliation_runs add column provider_checked_until_order uuid;

-- Down Migration
alter table reconciliation_runs drop column provider_checked_until, drop column provider_checked_until_order;
