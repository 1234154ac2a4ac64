-- database: ledger
-- description: Ledger debits, credits and net (debits minus credits) per currency and account kind, with a total per currency that nets to zero.
-- params: to (optional)
--
-- Sums every entry posted before :to (exclusive; all entries when absent). The entries of one
-- journal transaction share their posting time, so a journal is either wholly in or wholly out and
-- each currency's total nets to zero; a non-zero total net is a broken ledger. Amounts are signed
-- as in the ledger: a debit is positive. A user wallet is a liability, so its net is negative: the
-- amount owed to users. Index-only on entries_created_idx.
with per_account as (
  select e.ledger_account_id,
         coalesce(sum(e.amount_minor) filter (where e.amount_minor > 0), 0) as debits_minor,
         coalesce(-sum(e.amount_minor) filter (where e.amount_minor < 0), 0) as credits_minor
    from entries e
   where e.created_at < coalesce(:to, 'infinity')
   group by e.ledger_account_id
), per_kind as (
  select a.currency, a.kind, grouping(a.kind) as is_total,
         sum(p.debits_minor) as debits_minor, sum(p.credits_minor) as credits_minor
    from per_account p
    join ledger_accounts a on a.id = p.ledger_account_id
   group by grouping sets ((a.currency, a.kind), (a.currency))
)
select k.currency,
       case when k.is_total = 1 then 'total' else k.kind end as account_kind,
       format_minor(k.debits_minor, k.currency) as debits,
       format_minor(k.credits_minor, k.currency) as credits,
       format_minor(k.debits_minor - k.credits_minor, k.currency) as net
  from per_kind k
 order by k.currency, k.is_total,
          array_position(array['user_wallet', 'withdrawals_in_transit', 'provider_clearing', 'funding'], k.kind)
