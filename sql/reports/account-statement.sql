-- database: ledger
-- description: One wallet's ledger entries (account = the Balance DB account id): opening balance, each entry with its running balance, closing balance.
-- params: account (required), from (optional), to (optional)
--
-- The wallet is the ledger account 'wallet:<account>'; no rows when it has none. Entries posted in
-- [from, to) in the account's own order (entry_sequence). Balances come from the entries'
-- previous/current balance columns: the opening balance is the previous balance of the first entry
-- in range (else the balance after the last entry before it, else zero), the closing balance the
-- current balance of the last one. Signs are the ledger's: a debit is positive, and a wallet, a
-- liability, has a negative balance while the platform owes the user.
with wallet as (
  select a.id, a.currency from ledger_accounts a where a.code = 'wallet:' || :account
), in_range as (
  select e.account_sequence, e.created_at, e.amount_minor, e.previous_balance_minor, e.current_balance_minor,
         j.kind as journal_kind, j.transaction_id
    from entries e
    join journal_transactions j on j.id = e.journal_id
   where e.ledger_account_id = (select w.id from wallet w)
     and e.created_at >= coalesce(:from, '-infinity')
     and e.created_at < coalesce(:to, 'infinity')
), opening as (
  select coalesce(
           (select r.previous_balance_minor from in_range r order by r.account_sequence limit 1),
           (select e.current_balance_minor from entries e
             where e.ledger_account_id = (select w.id from wallet w)
               and e.created_at < coalesce(:from, '-infinity')
             order by e.account_sequence desc limit 1),
           0) as balance_minor
), closing as (
  select coalesce((select r.current_balance_minor from in_range r order by r.account_sequence desc limit 1),
                  (select o.balance_minor from opening o)) as balance_minor
), statement as (
  select 0 as line_order, 'opening' as line, null::timestamptz as posted_at, null::bigint as entry_sequence,
         null::text as journal_kind, null::uuid as transaction_id, null::bigint as amount_minor, o.balance_minor
    from opening o
  union all
  select 1, 'entry', r.created_at, r.account_sequence, r.journal_kind, r.transaction_id, r.amount_minor,
         r.current_balance_minor
    from in_range r
  union all
  select 2, 'closing', null, null, null, null, null, c.balance_minor
    from closing c
)
select s.line,
       format_utc(s.posted_at) as posted_at,
       s.entry_sequence,
       s.journal_kind,
       s.transaction_id::text as transaction_id,
       format_minor(s.amount_minor, w.currency) as amount,
       format_minor(s.balance_minor, w.currency) as balance,
       w.currency
  from statement s
 cross join wallet w
 order by s.line_order, s.entry_sequence
