-- database: balance
-- description: Withdraw orders by day of creation (in --tz, default UTC), current status and currency: count and total amount.
-- params: from (optional), to (optional), currency (optional)
--
-- The range is on created_at, from inclusive, to exclusive; a date alone means midnight in the
-- report's zone (--tz; the runner sets the transaction's TimeZone), and so does the day. The
-- status is the order's status now, so a day's rows move from init to success or failed as orders
-- settle.
--
-- Read from the rollup (sql/balance/0021_withdraw_daily_rollup.sql): the whole 15-minute buckets of
-- the range from withdraw_daily_rollup plus the deltas not folded into it yet, the partial buckets
-- at its ends (a --from or --to off the quarter hour) from withdraw_orders_created_idx. Exact at the
-- report's snapshot: the deltas are written with the orders. Every zone's offset is a whole number
-- of quarter hours, so each bucket lies in one local day. Until the rollup is built
-- (withdraw_daily_state.built_at), the whole range is read from withdraw_orders.
with bounds as (
  select coalesce(:from, '-infinity') as lo,
         coalesce(:to, 'infinity') as hi,
         -- the first whole bucket at or after lo, and the end of the last whole bucket before hi
         case when withdraw_daily_bucket(coalesce(:from, '-infinity')) = coalesce(:from, '-infinity')
                then coalesce(:from, '-infinity')
              else withdraw_daily_bucket(coalesce(:from, '-infinity')) + interval '15 minutes' end as whole_from,
         withdraw_daily_bucket(coalesce(:to, 'infinity')) as whole_to,
         coalesce((select s.built_at is not null from withdraw_daily_state s), false) as built
),
parts as (
  -- the whole buckets: folded, and not folded yet
  select r.bucket, r.status, r.currency, r.orders, r.amount_minor
    from bounds
    join withdraw_daily_rollup r on r.bucket >= bounds.whole_from and r.bucket < bounds.whole_to
   where bounds.built and bounds.whole_from < bounds.whole_to and (:currency is null or r.currency = :currency)
  union all
  select d.bucket, d.status, d.currency, d.orders, d.amount_minor
    from bounds
    join withdraw_daily_deltas d on d.bucket >= bounds.whole_from and d.bucket < bounds.whole_to
   where bounds.built and bounds.whole_from < bounds.whole_to and (:currency is null or d.currency = :currency)
  union all
  -- the orders themselves: the partial bucket at each end, or all of the bounds without the rollup
  select o.created_at, o.status, o.currency, 1, o.amount_minor
    from bounds
    join withdraw_orders o on o.created_at >= bounds.lo and o.created_at < bounds.whole_from
   where bounds.built and bounds.whole_from < bounds.whole_to and (:currency is null or o.currency = :currency)
  union all
  select o.created_at, o.status, o.currency, 1, o.amount_minor
    from bounds
    join withdraw_orders o on o.created_at >= bounds.whole_to and o.created_at < bounds.hi
   where bounds.built and bounds.whole_from < bounds.whole_to and (:currency is null or o.currency = :currency)
  union all
  select o.created_at, o.status, o.currency, 1, o.amount_minor
    from bounds
    join withdraw_orders o on o.created_at >= bounds.lo and o.created_at < bounds.hi
   where (not bounds.built or bounds.whole_from >= bounds.whole_to) and (:currency is null or o.currency = :currency)
),
days as (
  select (p.bucket at time zone current_setting('TimeZone'))::date as day, p.status, p.currency, p.orders, p.amount_minor
    from parts p
)
select day::text as day,
       status,
       currency,
       sum(orders)::bigint as orders,
       format_minor(sum(amount_minor), currency) as amount
  from days
 group by day, status, currency
having sum(orders) <> 0
 order by day, array_position(array['init', 'processing', 'manual', 'success', 'failed'], status), currency
