-- database: balance
-- description: Open withdraw orders (init, processing, manual) by status, currency and age since creation: count and total amount.
-- params: currency (optional)
--
-- Age is now minus created_at: how long the customer's money has been held. Buckets: < 1 min,
-- 1-10 min, 10-60 min, 1-24 h, > 24 h (lower bound inclusive). Uses withdraw_orders_open_idx,
-- whose predicate matches the status filter.
with open_orders as (
  select o.status, o.currency, o.amount_minor,
         case when now() - o.created_at < interval '1 minute' then 1
              when now() - o.created_at < interval '10 minutes' then 2
              when now() - o.created_at < interval '1 hour' then 3
              when now() - o.created_at < interval '24 hours' then 4
              else 5 end as bucket
    from withdraw_orders o
   where o.status = any(withdraw_open_statuses())
     and (:currency is null or o.currency = :currency)
)
select status,
       currency,
       case bucket when 1 then '< 1 min' when 2 then '1-10 min' when 3 then '10-60 min' when 4 then '1-24 h' else '> 24 h' end as age_bucket,
       count(*) as orders,
       format_minor(sum(amount_minor), currency) as amount
  from open_orders
 group by status, currency, bucket
 order by array_position(array['init', 'processing', 'manual'], status), currency, bucket
