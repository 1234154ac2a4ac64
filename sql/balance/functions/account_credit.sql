-- A deposit into a wallet, idempotent by the caller's transaction id; the ledger learns of it
-- through the outbox event written in the same transaction.
create or replace function account_credit(
  p_transaction_id uuid,
  p_account_id uuid,
  p_amount_minor bigint,
  p_actor text
) returns table (outcome text, account_id uuid, user_id text, currency text, status text,
                 balance_minor bigint, available_minor bigint, reserved_minor bigint)
language plpgsql as $$
#variable_conflict use_column
declare
  v_account accounts%rowtype;
  v_credit credits%rowtype;
  v_outcome text;
begin
  -- Two credits with the same transaction id on different accounts would both find no credit and
  -- race to insert it (a unique violation, 500); serialized here, the second sees a mismatch.
  perform pg_advisory_xact_lock(hashtextextended('account_credit/' || p_transaction_id::text, 0));
  select * into v_account from accounts a where a.id = p_account_id for update;
  if not found then
    return query select 'account_not_found'::text, null::uuid, null::text, null::text, null::text,
                        null::bigint, null::bigint, null::bigint;
    return;
  end if;

  select * into v_credit from credits c where c.transaction_id = p_transaction_id;
  if found then
    v_outcome := case when v_credit.account_id = p_account_id and v_credit.amount_minor = p_amount_minor
                      then 'replay' else 'mismatch' end;
  elsif v_account.status = 'closed' then
    v_outcome := 'account_unusable';
  else
    insert into credits (transaction_id, account_id, amount_minor, currency, actor)
    values (p_transaction_id, p_account_id, p_amount_minor, v_account.currency, p_actor);
    update accounts a
       set balance_minor = a.balance_minor + p_amount_minor,
           available_minor = a.available_minor + p_amount_minor,
           version = a.version + 1,
           updated_at = now()
     where a.id = p_account_id
    returning * into v_account;
    insert into outbox (topic, transaction_id, payload)
    values ('account.credited', p_transaction_id, jsonb_build_object(
      'transactionId', p_transaction_id, 'accountId', p_account_id, 'userId', v_account.user_id,
      'amountMinor', p_amount_minor::text, 'currency', v_account.currency));
    v_outcome := 'credited';
  end if;

  return query select v_outcome, v_account.id, v_account.user_id, v_account.currency, v_account.status,
                      v_account.balance_minor, v_account.available_minor, v_account.reserved_minor;
end $$;
