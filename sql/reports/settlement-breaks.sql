-- database: balance
-- description: Settlement breaks (statement × orders × ledger): every open one, and those resolved in [from, to), with age and what disagrees.
-- params: from (optional), to (optional), currency (optional)
--
-- One row per break of a settlement_* category (reconcile/settlementMatch.ts, docs/reports.md), open
-- ones first, oldest first. state is open or resolved; resolved rows are those resolved within
-- [from, to) (none when from is absent). first_seen_day is the day of first_seen_at in the
-- report's zone (--tz). age_days counts whole days from first seen to now (open) or to the
-- resolution. reference is the statement line's reference (our transaction id when it is ours).
-- break_id is what POST /admin/breaks/{id}/resolve takes, with a note. Uses
-- reconciliation_breaks_open_idx for the open ones.
select b.id as break_id,
       case when b.resolved_at is null then 'open' else 'resolved' end as state,
       b.category,
       case when b.subject like 'settlement:%' then substr(b.subject, length('settlement:') + 1)
            else b.transaction_id::text end as reference,
       b.order_id::text as order_id,
       b.currency,
       b.expected,
       b.actual,
       format_utc(b.first_seen_at) as first_seen_at,
       (b.first_seen_at at time zone current_setting('TimeZone'))::date::text as first_seen_day,
       format_utc(b.last_seen_at) as last_seen_at,
       b.seen_count,
       floor(extract(epoch from coalesce(b.resolved_at, now()) - b.first_seen_at) / 86400)::bigint as age_days,
       format_utc(b.resolved_at) as resolved_at,
       b.resolution
  from reconciliation_breaks b
 where b.category like 'settlement\_%'
   and (b.resolved_at is null
        or (:from is not null and b.resolved_at >= :from and b.resolved_at < coalesce(:to, 'infinity')))
   and (:currency is null or b.currency = :currency)
 order by b.resolved_at is not null, b.first_seen_at, b.id
