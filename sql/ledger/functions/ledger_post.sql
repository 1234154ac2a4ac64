-- Posting: one call per batch of events, idempotent by (transaction_id, kind). Every ledger account
-- the batch touches is created if missing and locked in id order (no deadlocks between batches).
-- p_events: [{"source", "transactionId", "kind": deposit|hold|settle|reverse, "accountId",
-- "currency", "amountMinor": "<integer>"}]. Settle and reverse post the hold first if it is missing
-- (events of one withdrawal may be relayed out of order); the hold is a fact of the Balance DB
-- already. A posted hold writes ledger.held to the outbox: the gateway may submit it.
create or replace function ledger_post(p_events jsonb)
returns table (transaction_id uuid, kind text, journal_id bigint, posted boolean)
language plpgsql as $$
#variable_conflict use_column
declare
  v_event jsonb;
  v_at timestamptz;
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
  -- the batch's time is taken once its accounts are locked: along every account's sequence,
  -- created_at then never decreases (a batch that waited for a lock is dated after the one it
  -- waited for), which the daily checkpoints rely on (sql/ledger/functions/ledger_close_day.sql)
  v_at := clock_timestamp();

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
