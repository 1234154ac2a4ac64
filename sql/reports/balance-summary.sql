-- database: ledger
-- description: Per currency over [from, to): what was owed to users at the start, deposits, payouts, reversals, what was owed at the end; from the ledger's daily checkpoints.
-- params: from (required), to (required), currency (optional)
--
-- Each bound is read as checkpoint plus tail (sql/README.md, "Ledger checkpoints"): the daily totals
-- (ledger_checkpoint_totals) of every closed UTC day that ends by the bound, then the entries after
-- it and before the bound (entries_created_idx: at most the days not closed yet, or the bound's own
-- day up to a local midnight, e.g. 15:00 UTC for Tokyo). Cumulative debits and credits per currency
-- and account kind at each bound give the balances and, by difference, the period's movements.
-- All amounts are positive. opening_balance and closing_balance are what the platform owes users
-- (minus the user wallets' ledger balance: their available funds); credits are deposits (funding
-- debits), payouts the holds taken from wallets (in-transit credits), reversals the failed payouts
-- returned to wallets (in-transit debits less what was settled), settled what went to the provider
-- (provider-clearing credits), in_transit_closing what is held for payouts not final at :to.
-- closing_balance = opening_balance + credits - payouts + reversals.
with bounds as (
  select 1 as bound, :from as at
  union all
  select 2 as bound, :to as at
), cut as (
  select b.bound, b.at,
         (select max(d.day) from ledger_checkpoint_days d
           where ((d.day + 1)::timestamp at time zone 'UTC') <= b.at) as day
    from bounds b
), closed_days as (
  select c.bound, t.currency, t.account_kind as kind, sum(t.debits_minor) as debits_minor, sum(t.credits_minor) as credits_minor
    from cut c
    join ledger_checkpoint_totals t on t.day <= c.day
   group by c.bound, t.currency, t.account_kind
), tail_accounts as (
  select c.bound, e.ledger_account_id,
         coalesce(sum(e.amount_minor) filter (where e.amount_minor > 0), 0) as debits_minor,
         coalesce(-sum(e.amount_minor) filter (where e.amount_minor < 0), 0) as credits_minor
    from cut c
    join entries e
      on e.created_at >= coalesce(((c.day + 1)::timestamp at time zone 'UTC'), '-infinity')
     and e.created_at < c.at
   group by c.bound, e.ledger_account_id
), tail as (
  select p.bound, a.currency, a.kind, sum(p.debits_minor) as debits_minor, sum(p.credits_minor) as credits_minor
    from tail_accounts p
    join ledger_accounts a on a.id = p.ledger_account_id
   group by p.bound, a.currency, a.kind
), cumulative as (
  select x.bound, x.currency, x.kind, sum(x.debits_minor) as d, sum(x.credits_minor) as c
    from (
      select * from closed_days
      union all
      select * from tail
    ) x
   group by x.bound, x.currency, x.kind
), per_currency as (
  select k.currency,
         coalesce(sum(k.c - k.d) filter (where k.bound = 1 and k.kind = 'user_wallet'), 0) as opening_minor,
         coalesce(sum(k.c - k.d) filter (where k.bound = 2 and k.kind = 'user_wallet'), 0) as closing_minor,
         coalesce(sum(k.d) filter (where k.bound = 2 and k.kind = 'funding'), 0)
         - coalesce(sum(k.d) filter (where k.bound = 1 and k.kind = 'funding'), 0) as credits_minor,
         coalesce(sum(k.c) filter (where k.bound = 2 and k.kind = 'withdrawals_in_transit'), 0)
         - coalesce(sum(k.c) filter (where k.bound = 1 and k.kind = 'withdrawals_in_transit'), 0) as payouts_minor,
         coalesce(sum(k.c) filter (where k.bound = 2 and k.kind = 'provider_clearing'), 0)
         - coalesce(sum(k.c) filter (where k.bound = 1 and k.kind = 'provider_clearing'), 0) as settled_minor,
         coalesce(sum(k.d) filter (where k.bound = 2 and k.kind = 'withdrawals_in_transit'), 0)
         - coalesce(sum(k.d) filter (where k.bound = 1 and k.kind = 'withdrawals_in_transit'), 0) as in_transit_released_minor,
         coalesce(sum(k.c - k.d) filter (where k.bound = 2 and k.kind = 'withdrawals_in_transit'), 0) as in_transit_closing_minor
    from cumulative k
   group by k.currency
)
select p.currency,
       format_minor(p.opening_minor, p.currency) as opening_balance,
       format_minor(p.credits_minor, p.currency) as credits,
       format_minor(p.payouts_minor, p.currency) as payouts,
       format_minor(p.in_transit_released_minor - p.settled_minor, p.currency) as reversals,
       format_minor(p.closing_minor, p.currency) as closing_balance,
       format_minor(p.in_transit_closing_minor, p.currency) as in_transit_closing,
       format_minor(p.settled_minor, p.currency) as settled
  from per_currency p
 where :currency is null or p.currency = :currency
 order by p.currency
