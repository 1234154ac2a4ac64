-- Up Migration
-- Bulk payouts (POST /withdraw/batch).

-- One row per bulk payout: its items and what each got (code, msg, order), in the order sent. The
-- reply itself is stored with the idempotency key, as for single withdrawals; this row outlives the
-- key and lets GET /withdraw/batch/{batchId} show each item with its order's current status.
create table withdraw_batches (
  id uuid primary key,
  user_id text not null,
  idempotency_key uuid not null,
  item_count int not null constraint withdraw_batches_item_count_range check (item_count between 1 and 1000),
  accepted_count int not null constraint withdraw_batches_accepted_range check (accepted_count between 0 and item_count),
  -- [{"clientReference", "code", "msg", "withdrawOrderId"}], json: kept as sent
  items json not null,
  created_at timestamptz not null default now(),
  constraint withdraw_batches_user_key unique (user_id, idempotency_key)
);
