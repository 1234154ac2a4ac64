-- Appends one entry to a ledger account: the next sequence number, the running balance before and
-- after, and the hash chained to the account's previous entry; the account's projection (balance,
-- entry count, last hash) moves with it.
create or replace function ledger_append_entry(
  p_journal_id bigint, p_transaction_id uuid, p_kind text, p_ledger_account_id bigint,
  p_amount bigint, p_currency text, p_at timestamptz
) returns void language plpgsql as $$
declare
  v_account ledger_accounts%rowtype;
  v_sequence bigint;
  v_balance bigint;
  v_hash bytea;
begin
  -- already locked by ledger_post, in id order; FOR UPDATE here is a no-op safety net
  select * into strict v_account from ledger_accounts where id = p_ledger_account_id for update;
  if v_account.currency <> p_currency then
    raise exception 'ledger account % is %, entry is %', v_account.code, v_account.currency, p_currency
      using errcode = 'check_violation', constraint = 'entries_currency_matches_account';
  end if;
  v_sequence := v_account.entry_count + 1;
  v_balance := v_account.balance_minor + p_amount;
  v_hash := ledger_entry_hash(v_account.last_entry_hash, v_account.id, v_sequence, p_journal_id,
                              p_transaction_id, p_kind, p_amount, p_currency, v_account.balance_minor, v_balance, p_at);
  insert into entries (journal_id, ledger_account_id, amount_minor, currency, account_sequence,
                       previous_balance_minor, current_balance_minor, previous_hash, hash, created_at)
  values (p_journal_id, v_account.id, p_amount, p_currency, v_sequence,
          v_account.balance_minor, v_balance, v_account.last_entry_hash, v_hash, p_at);
  update ledger_accounts set balance_minor = v_balance, entry_count = v_sequence, last_entry_hash = v_hash
   where id = v_account.id;
end $$;
