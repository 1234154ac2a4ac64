-- Locks one withdrawal for a transition and returns its order row (null when there is none).
-- Lock order, everywhere: the account row first, then the order row. withdraw_create takes the
-- account and inserts a new order, so no two transactions can wait on each other in a cycle.
-- The order row is locked FOR NO KEY UPDATE, not FOR UPDATE: rows that reference an order
-- (gateway_submit_attempts, gateway_status_queries) take FOR KEY SHARE on it through their foreign
-- key, and FOR UPDATE would conflict with that and allow a cycle (a submission batch inserting an
-- attempt, then waiting for the account, against a callback batch holding the account and waiting
-- for the order). A status update changes no key column, so NO KEY UPDATE is all it needs.
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
