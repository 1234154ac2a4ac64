-- Debit one account, credit another, as one journal transaction. Returns null when this
-- (transaction_id, kind) was already posted.
create or replace function ledger_post_journal(
  p_transaction_id uuid, p_kind text, p_source text, p_debit_code text, p_credit_code text,
  p_amount bigint, p_currency text, p_at timestamptz
) returns bigint language plpgsql as $$
declare
  v_journal_id bigint;
  v_debit_id bigint;
  v_credit_id bigint;
begin
  if p_amount <= 0 then
    raise exception 'journal % %: amount must be positive, got %', p_transaction_id, p_kind, p_amount
      using errcode = 'check_violation', constraint = 'journal_amount_positive';
  end if;
  insert into journal_transactions (transaction_id, kind, source, created_at)
  values (p_transaction_id, p_kind, p_source, p_at)
  on conflict (transaction_id, kind) do nothing
  returning id into v_journal_id;
  if v_journal_id is null then
    return null;
  end if;
  select id into strict v_debit_id from ledger_accounts where code = p_debit_code;
  select id into strict v_credit_id from ledger_accounts where code = p_credit_code;
  perform ledger_append_entry(v_journal_id, p_transaction_id, p_kind, v_debit_id, p_amount, p_currency, p_at);
  perform ledger_append_entry(v_journal_id, p_transaction_id, p_kind, v_credit_id, -p_amount, p_currency, p_at);
  return v_journal_id;
end $$;
