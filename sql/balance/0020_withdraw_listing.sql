-- Up Migration
-- The client API's listing of orders (GET /withdraws): newest first, keyset-paged.

-- A user's orders newest first by (created_at, id), keyset-paged: one range scan of this index. It
-- also serves the rolling 24-hour limit (withdraw_create sums a user's recent orders in one currency:
-- a range on (user_id, created_at) with currency, amount and status in the index), so it replaces
-- withdraw_orders_user_window_idx: one index per order, as before.
create index withdraw_orders_user_created_idx on withdraw_orders (user_id, created_at, id) include (currency, amount_minor, status);
drop index withdraw_orders_user_window_idx;

-- An admin's listing of every user's orders pages on (created_at, id); the report daily-withdrawals
-- reads the same index, index-only, as before.
create index withdraw_orders_created_id_idx on withdraw_orders (created_at, id) include (status, currency, amount_minor);
drop index withdraw_orders_created_idx;
alter index withdraw_orders_created_id_idx rename to withdraw_orders_created_idx;
