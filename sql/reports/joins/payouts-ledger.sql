-- database: ledger
-- description: The ledger journals of a batch of the payouts report's transactions.
-- params: transactions (required)
--
-- One row per transaction id of the batch that has journals: the ids of its hold (money out of the
-- wallet), settle (paid to the provider) and reverse (back to the wallet) journals, and when the
-- last of settle or reverse was posted. Uses the unique (transaction_id, kind) index.
select j.transaction_id::text as transaction_id,
       max(j.id) filter (where j.kind = 'hold') as hold_journal_id,
       max(j.id) filter (where j.kind = 'settle') as settle_journal_id,
       max(j.id) filter (where j.kind = 'reverse') as reverse_journal_id,
       format_utc(max(j.created_at) filter (where j.kind in ('settle', 'reverse'))) as ledger_final_at
  from journal_transactions j
 where j.transaction_id = any(:transactions)
 group by j.transaction_id
