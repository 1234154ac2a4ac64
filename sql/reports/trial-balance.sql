-- database: ledger
-- description: Ledger debits, credits and net (debits minus credits) per currency and account kind, with a total per currency that nets to zero.
-- params: to (optional)
--
-- Everything posted before :to (exclusive; all entries when absent), read as checkpoint plus tail:
-- the daily totals of every closed day that ends by :to (ledger_checkpoint_totals, a few rows per
-- day), then the entries after the last such day and before :to (entries_created_idx, index only:
-- at most the days not closed yet). The entries of one journal transaction share their posting
-- time, so a journal is wholly in or out and each currency's total nets to zero; a non-zero total
-- net is a broken ledger. Amounts are signed as in the ledger: a debit is positive. A user wallet
-- is a liability, so its net is negative: the amount owed to users.
with cut as (
  select max(d.day) as day from ledger_checkpoint_days d
   where ((d.day + 1)::timestamp at time zone 'UTC') <= coalesce(:to, 'infinity')
), closed_days as (
  select t.currency, t.account_kind as kind, sum(t.debits_minor) as debits_minor, sum(t.credits_minor) as credits_minor
    from ledger_checkpoint_totals t
   where t.day <= (select c.day from cut c)
   group by t.currency, t.account_kind
), tail_accounts as (
  select e.ledger_account_id,
         coalesce(sum(e.amount_minor) filter (where e.amount_minor > 0), 0) as debits_minor,
         coalesce(-sum(e.amount_minor) filter (where e.amount_minor < 0), 0) as credits_minor
    from entries e
   where e.created_at >= coalesce((((select c.day from cut c) + 1)::timestamp at time zone 'UTC'), '-infinity')
     and e.created_at < coalesce(:to, 'infinity')
   group by e.ledger_account_id
), tail as (
  select a.currency, a.kind, sum(p.debits_minor) as debits_minor, sum(p.credits_minor) as credits_minor
    from tail_accounts p
    join ledger_accounts a on a.id = p.ledger_account_id
   group by a.currency, a.kind
), per_kind as (
  select b.currency, b.kind, grouping(b.kind) as is_total,
         sum(b.debits_minor) as debits_minor, sum(b.credits_minor) as credits_minor
    from (
      select * from closed_days
      union all
      select * from tail
    ) b
   group by grouping sets ((b.currency, b.kind), (b.currency))
)
select k.currency,
       case when k.is_total = 1 then 'total' else k.kind end as account_kind,
       format_minor(k.debits_minor, k.currency) as debits,
       format_minor(k.credits_minor, k.currency) as credits,
       format_minor(k.debits_minor - k.credits_minor, k.currency) as net
  from per_kind k
 order by k.currency, k.is_total,
          array_position(array['user_wallet', 'withdrawals_in_transit', 'provider_clearing', 'funding'], k.kind)
