-- Up Migration
-- The daily-withdrawals report without a scan of all history: withdraw orders counted and summed per
-- 15-minute bucket of created_at (UTC), status now and currency. Every zone's offset is a whole
-- number of quarter hours, so a bucket lies inside one local day in any --tz; the report reads
-- whole buckets here and only the partial buckets at the ends of its range from withdraw_orders.
--
-- Written in the same transaction as the orders: a trigger (functions/withdraw_daily_record.sql)
-- appends a delta per inserted order and two per status change to withdraw_daily_deltas
-- (insert-only, no index: no row every writer updates, so no hot row); the reports__daily_fold job
-- (functions/withdraw_daily_fold.sql) moves the deltas into withdraw_daily_rollup every minute. The
-- report reads rollup plus deltas, so it is exact at its snapshot whether or not the job has run.
--
-- The rollup is built once from withdraw_orders by the job itself (functions/withdraw_daily_rebuild.sql,
-- in a REPEATABLE READ snapshot, so that orders written meanwhile are counted once), after the
-- trigger exists; until then built_at is null and the report scans withdraw_orders as before.

create table withdraw_daily_rollup (
  -- the start of a 15-minute bucket of created_at, on the quarter hours of UTC
  bucket timestamptz not null,
  status text not null,
  currency text not null,
  orders bigint not null,
  amount_minor numeric not null,
  primary key (bucket, status, currency)
);

create table withdraw_daily_deltas (
  bucket timestamptz not null,
  status text not null,
  currency text not null,
  -- +1 for an order that entered (bucket, status, currency), -1 for one that left it
  orders int not null constraint withdraw_daily_deltas_orders_unit check (orders in (-1, 1)),
  amount_minor bigint not null
);

create table withdraw_daily_state (
  id boolean primary key default true constraint withdraw_daily_state_one_row check (id),
  -- when withdraw_daily_rebuild built the rollup from withdraw_orders; null: not built, the
  -- report scans withdraw_orders
  built_at timestamptz,
  folded_at timestamptz
);
insert into withdraw_daily_state (id) values (true);
