-- database: balance
-- description: Every payout (withdraw order) created in [from, to): amount, status, the provider's settlement line and fee, and the ledger journals.
-- params: from (required), to (required), currency (optional)
-- join: payouts-ledger on transaction_id
--
-- One row per withdraw order created in [from, to) (a date alone is midnight in --tz), oldest first.
-- amount is what left the user's wallet, in the order's currency, positive. fee is the provider's
-- fee on the settlement line (in the line's currency), empty until a statement with the payout is
-- imported. provider_reference is the reference on the statement (our transaction id). created_day
-- is the day of created_at in the report's zone; instants are UTC. settlement_date/settlement_line
-- locate the paid line in the day's current statement; reversed_on is the day of a reversed line.
-- The ledger columns come from the Ledger DB (sql/reports/joins/payouts-ledger.sql), merged by
-- transaction id while the report streams. Reads withdraw_orders_created_idx for the range and
-- settlement_lines_reference_idx once per order: that one probe returns the order's lines in current
-- statements (a paid line, and a reversed one if the payout came back), the earliest paid line
-- first; the reversal's day comes from the same rows.
select o.id::text as order_id,
       o.transaction_id::text as transaction_id,
       o.account_id::text as account_id,
       o.currency,
       format_minor(o.amount_minor, o.currency) as amount,
       case when line.status = 'paid' then format_minor(line.fee_minor, line.currency) end as fee,
       o.status,
       format_utc(o.created_at) as created_at,
       (o.created_at at time zone current_setting('TimeZone'))::date::text as created_day,
       case when o.status in ('success', 'failed') then format_utc(o.updated_at) end as finished_at,
       case when line.status = 'paid' then line.reference end as provider_reference,
       case when line.status = 'paid' then line.statement_date end as settlement_date,
       case when line.status = 'paid' then line.line_number end as settlement_line,
       case when line.status = 'paid' then format_utc(line.settled_at) end as settled_at,
       line.reversed_on
  from withdraw_orders o
  left join lateral (
    select l.status, l.reference, l.fee_minor, l.currency, l.settled_at, l.line_number, s.statement_date::text as statement_date,
           (min(s.statement_date) filter (where l.status = 'reversed') over ())::text as reversed_on
      from settlement_lines l
      join settlement_statements s on s.id = l.statement_id and s.state = 'current'
     where l.reference = o.transaction_id::text
     -- the earliest paid line; a reversed one only when there is no paid line (its paid columns stay empty)
     order by l.status <> 'paid', s.statement_date, l.line_number
     limit 1
  ) line on true
 where o.created_at >= :from
   and o.created_at < :to
   and (:currency is null or o.currency = :currency)
 order by o.created_at, o.id
