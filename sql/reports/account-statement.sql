-- database: ledger
-- description: One wallet's ledger entries (account = the Balance DB account id): opening balance, each entry with its running balance, closing balance.
-- params: account (required), from (optional), to (optional)
--
-- The wallet is the ledger account 'wallet:<account>'; no rows when it has none. Entries posted in
-- [from, to) in the account's own order (entry_sequence). The balances at both ends are read as
-- checkpoint plus tail (ledger_account_balance_at: the last daily checkpoint before the day, then
-- at most that day's entries), and the entries between are the sequence range they bound, so the
-- cost is the range asked for, not the account's history. Signs are the ledger's: a debit is
-- positive, and a wallet, a liability, has a negative balance while the platform owes the user.
with wallet as (
  select a.id, a.currency from ledger_accounts a where a.code = 'wallet:' || :account
), opening as (
  select b.balance_minor, b.account_sequence
    from ledger_account_balance_at((select w.id from wallet w), coalesce(:from, '-infinity')) b
), closing as (
  select b.balance_minor, b.account_sequence
    from ledger_account_balance_at((select w.id from wallet w), coalesce(:to, 'infinity')) b
), in_range as (
  select e.account_sequence, e.created_at, e.amount_minor, e.current_balance_minor,
         j.kind as journal_kind, j.transaction_id
    from entries e
    join journal_transactions j on j.id = e.journal_id
   where e.ledger_account_id = (select w.id from wallet w)
     and e.account_sequence > (select o.account_sequence from opening o)
     and e.account_sequence <= (select c.account_sequence from closing c)
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
