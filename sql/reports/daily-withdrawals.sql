-- database: balance
-- description: Withdraw orders by day of creation (in --tz, default UTC), current status and currency: count and total amount.
-- params: from (optional), to (optional), currency (optional)
--
-- The range is on created_at, from inclusive, to exclusive; a date alone means midnight in the
-- report's zone (--tz; the runner sets the transaction's TimeZone), and so does the day. The
-- status is the order's status now, so a day's rows move from init to success or failed as orders
-- settle. Groups by the date itself (not its text) so the aggregate hashes 8-byte keys; the
-- statistics object withdraw_orders_created_day_stats tells the planner how few groups there are.
-- A bounded range reads withdraw_orders_created_idx, index-only.
with orders as (
  select (o.created_at at time zone current_setting('TimeZone'))::date as day, o.status, o.currency, o.amount_minor
    from withdraw_orders o
   where o.created_at >= coalesce(:from, '-infinity')
     and o.created_at < coalesce(:to, 'infinity')
     and (:currency is null or o.currency = :currency)
)
select day::text as day,
       status,
       currency,
       count(*) as orders,
       format_minor(sum(amount_minor), currency) as amount
  from orders
 group by day, status, currency
 order by day, array_position(array['init', 'processing', 'manual', 'success', 'failed'], status), currency
