-- The SHA-256 of one entry, chained to its account's previous entry. Input (UTF-8, fields joined by
-- '|'), reproduced by reconcile/ledgerVerify.ts: previous hash as lowercase hex ('' for the first
-- entry), ledger account id, account sequence, journal id, transaction id, journal kind, amount,
-- currency, previous balance, current balance, created_at as integer microseconds since the Unix
-- epoch (ledger_epoch_us).
create or replace function ledger_entry_hash(
  p_previous_hash bytea, p_ledger_account_id bigint, p_sequence bigint, p_journal_id bigint,
  p_transaction_id uuid, p_kind text, p_amount bigint, p_currency text,
  p_previous_balance bigint, p_current_balance bigint, p_created_at timestamptz
) returns bytea language sql immutable as $$
  select sha256(convert_to(concat_ws('|',
    coalesce(encode(p_previous_hash, 'hex'), ''), p_ledger_account_id, p_sequence, p_journal_id,
    p_transaction_id, p_kind, p_amount, p_currency, p_previous_balance, p_current_balance,
    ledger_epoch_us(p_created_at)), 'UTF8'))
$$;
