-- database: both
-- description: Outbox rows not yet relayed, and the age of the oldest, in each database.
-- params: none
--
-- Run on the Balance DB and on the Ledger DB; the runner adds the database column. Reads only the
-- unrelayed rows (outbox_unrelayed_idx). oldest_age_s is whole seconds; empty when nothing waits.
select count(*) as unrelayed,
       format_utc(min(o.created_at)) as oldest_created_at,
       floor(extract(epoch from now() - min(o.created_at)))::bigint as oldest_age_s
  from outbox o
 where o.relayed_at is null
