-- database: balance
-- description: Open reconciliation breaks by category and age since first seen: count and the oldest first_seen.
-- params: none
--
-- Buckets as on the dashboard (reconcile/breakQueries.ts): < 1h, 1h-24h, 1d-7d, > 7d. Uses
-- reconciliation_breaks_open_idx (open breaks only).
with open_breaks as (
  select b.category, b.first_seen_at,
         case when b.first_seen_at > now() - interval '1 hour' then 1
              when b.first_seen_at > now() - interval '1 day' then 2
              when b.first_seen_at > now() - interval '7 days' then 3
              else 4 end as bucket
    from reconciliation_breaks b
   where b.resolved_at is null
)
select category,
       case bucket when 1 then '<1h' when 2 then '1h-24h' when 3 then '1d-7d' else '>7d' end as age_bucket,
       count(*) as breaks,
       format_utc(min(first_seen_at)) as oldest_first_seen
  from open_breaks
 group by category, bucket
 order by category, bucket
