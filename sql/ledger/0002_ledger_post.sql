-- Up Migration
-- Posting: one call per batch of events, idempotent by (transaction_id, kind). Each entry carries
-- its account's running balance and a SHA-256 chained to the account's previous entry.
--
-- Hash input (UTF-8, fields joined by '|'), reproduced by reconcile/ledgerVerify.ts:
--   previous hash as lowercase hex ('' for the first entry), ledger account id, account sequence,
--   journal id, transaction id, journal kind, amount, currency, previous balance, current balance,
--   created_at as integer microseconds since the Unix epoch.

create function ledger_epoch_us(p_at timestamptz) returns bigint language sql immutable as $$
  select (extract(epoch from p_at) * 1000000)::bigint
$$;

create function ledger_entry_hash(
  p_previous_hash bytea, p_ledger_account_id bigint, p_sequence bigint, p_journal_id bigint,
  p_transaction_id uuid, p_kind text, p_amount bigint, p_currency text,
  p_previous_balance bigint, p_current_balance bigint, p_created_at timestamptz
) returns bytea language sql immutable as $$
  select sha256(convert_to(concat_ws('|',
    coalesce(encode(p_previous_hash, 'hex'), ''), p_ledger_account_id, p_sequence, p_journal_id,
    p_transaction_id, p_kind, p_amount, p_currency, p_previous_balance, p_current_balance,
    ledger_epoch_us(p_created_at)), 'UTF8'))
$$;

create function ledger_append_entry(
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

-- Debit one account, credit another, as one journal transaction. Returns null when this
-- (transaction_id, kind) was already posted.
create function ledger_post_journal(
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

-- p_events: [{"source", "transactionId", "kind": deposit|hold|settle|reverse, "accountId", "currency",
-- "amountMinor": "<integer>"}]. Settle and reverse post the hold first if it is missing (events of
-- one withdrawal may be relayed out of order); the hold is a fact of the Balance DB already.
create function ledger_post(p_events jsonb)
returns table (transaction_id uuid, kind text, journal_id bigint, posted boolean)
language plpgsql as $$
#variable_conflict use_column
declare
  v_event jsonb;
  v_at timestamptz := clock_timestamp();
  v_tx uuid;
  v_kind text;
  v_source text;
  v_amount bigint;
  v_currency text;
  v_wallet text;
  v_journal bigint;
begin
  -- every account the batch touches exists, then all are locked in id order: no deadlocks
  -- between concurrent batches
  insert into ledger_accounts (code, kind, currency, external_id)
  select distinct 'wallet:' || (e ->> 'accountId'), 'user_wallet', e ->> 'currency', (e ->> 'accountId')::uuid
    from jsonb_array_elements(p_events) e
  union
  select distinct platform.prefix || (e ->> 'currency'), platform.kind, e ->> 'currency', null::uuid
    from jsonb_array_elements(p_events) e
   cross join (values ('in_transit:', 'withdrawals_in_transit'), ('provider_clearing:', 'provider_clearing'),
                      ('funding:', 'funding')) as platform(prefix, kind)
  order by 1
  on conflict (code) do nothing;

  perform 1 from ledger_accounts a
   where a.code in (select 'wallet:' || (e ->> 'accountId') from jsonb_array_elements(p_events) e)
      or a.code in (select p.prefix || (e ->> 'currency') from jsonb_array_elements(p_events) e
                    cross join (values ('in_transit:'), ('provider_clearing:'), ('funding:')) as p(prefix))
   order by a.id
   for update;

  for v_event in select value from jsonb_array_elements(p_events) loop
    v_tx := (v_event ->> 'transactionId')::uuid;
    v_kind := v_event ->> 'kind';
    v_source := v_event ->> 'source';
    v_amount := (v_event ->> 'amountMinor')::bigint;
    v_currency := v_event ->> 'currency';
    v_wallet := 'wallet:' || (v_event ->> 'accountId');

    if v_kind = 'deposit' then
      v_journal := ledger_post_journal(v_tx, 'deposit', v_source, 'funding:' || v_currency, v_wallet, v_amount, v_currency, v_at);
    elsif v_kind = 'hold' then
      v_journal := ledger_post_journal(v_tx, 'hold', v_source, v_wallet, 'in_transit:' || v_currency, v_amount, v_currency, v_at);
      if v_journal is not null then
        insert into outbox (topic, transaction_id, payload)
        values ('ledger.held', v_tx, jsonb_build_object('transactionId', v_tx, 'journalId', v_journal));
      end if;
    elsif v_kind in ('settle', 'reverse') then
      perform ledger_post_journal(v_tx, 'hold', v_source, v_wallet, 'in_transit:' || v_currency, v_amount, v_currency, v_at);
      -- what leaves in-transit must be exactly what the hold put there
      if exists (select 1 from journal_transactions j join entries e on e.journal_id = j.id
                  where j.transaction_id = v_tx and j.kind = 'hold' and e.amount_minor < 0
                    and (e.amount_minor <> -v_amount or e.currency <> v_currency)) then
        raise exception 'withdraw %: % of % % does not match its hold', v_tx, v_kind, v_amount, v_currency
          using errcode = 'check_violation', constraint = 'ledger_release_matches_hold';
      end if;
      if v_kind = 'settle' then
        v_journal := ledger_post_journal(v_tx, 'settle', v_source, 'in_transit:' || v_currency,
                                         'provider_clearing:' || v_currency, v_amount, v_currency, v_at);
      else
        v_journal := ledger_post_journal(v_tx, 'reverse', v_source, 'in_transit:' || v_currency, v_wallet,
                                         v_amount, v_currency, v_at);
      end if;
    else
      raise exception 'unknown ledger event kind %', v_kind using errcode = 'invalid_parameter_value';
    end if;

    if v_journal is null then
      select j.id into v_journal from journal_transactions j where j.transaction_id = v_tx and j.kind = v_kind;
      return query select v_tx, v_kind, v_journal, false;
    else
      return query select v_tx, v_kind, v_journal, true;
    end if;
  end loop;
end $$;

-- Down Migration
drop function ledger_post, ledger_post_journal, ledger_append_entry, ledger_entry_hash, ledger_epoch_us;
