-- Up Migration
-- Provider checks of reconciliation keep their own cursor: a run checks final orders after it
-- in update order, and advances it only past the orders the provider actually answered for.
alter table reconciliation_runs add column provider_checked_until timestamptz;
alter table reconciliation_runs add column provider_checked_until_order uuid;
