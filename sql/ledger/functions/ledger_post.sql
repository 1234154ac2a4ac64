-- Posting: one call per batch of events, idempotent by (transaction_id, kind), set-based.
-- p_events: [{"source", "transactionId", "kind": deposit|hold|settle|reverse, "accountId",
-- "currency", "amountMinor": "<integer>"}]. Settle and reverse post the hold first if it is missing
-- (events of one withdrawal may be relayed out of order); the hold is a fact of the Balance DB
-- already, and what leaves in-transit must be exactly what the hold put there. A posted hold writes
-- ledger.held to the outbox: the gateway may submit it.
--
-- Per batch, whatever its size: the accounts it touches are created if missing and locked in id
-- order (no deadlocks between batches); the journals already posted are read once; running
-- balances, sequences and hash chains are computed per account in one pass over the new entries
-- (the chain is sequential per account); then ONE statement writes the journals and their entries
-- (journal_must_balance checks them over the statement's rows), one updates each account's
-- projection once, one writes the outbox events.
create or replace function ledger_post(p_events jsonb)
returns table (transaction_id uuid, kind text, journal_id bigint, posted boolean)
language plpgsql as $$
#variable_conflict use_column
declare
  v_at timestamptz;
  -- the new journals, in posting order
  j_id bigint[];
  j_tx uuid[];
  j_kind text[];
  j_source text[];
  j_amount bigint[];
  j_currency text[];
  j_debit text[];
  j_credit text[];
  j_sub int[];
  j_n bigint[];
  -- the locked accounts, in id order
  a_id bigint[];
  a_code text[];
  a_currency text[];
  a_balance bigint[];
  a_count bigint[];
  a_hash bytea[];
  -- the new entries
  e_journal bigint[] := '{}';
  e_account bigint[] := '{}';
  e_amount bigint[] := '{}';
  e_currency text[] := '{}';
  e_sequence bigint[] := '{}';
  e_previous_balance bigint[] := '{}';
  e_balance bigint[] := '{}';
  e_previous_hash bytea[] := '{}';
  e_hash bytea[] := '{}';
  e_position bigint[] := '{}';
  v_entry record;
  v_i int := 0;
  v_n int := 0;
  v_bad text;
begin
  if exists (select 1 from jsonb_array_elements(p_events) e
              where e ->> 'kind' not in ('deposit', 'hold', 'settle', 'reverse') or e ->> 'kind' is null) then
    raise exception 'unknown ledger event kind in %', left(p_events::text, 300) using errcode = 'invalid_parameter_value';
  end if;
  if exists (select 1 from jsonb_array_elements(p_events) e where (e ->> 'amountMinor')::bigint <= 0) then
    raise exception 'ledger event amounts must be positive' using errcode = 'check_violation', constraint = 'journal_amount_positive';
  end if;

  -- every account the batch touches exists, then all are locked in id order
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

  select array_agg(l.id order by l.id), array_agg(l.code order by l.id), array_agg(l.currency order by l.id),
         array_agg(l.balance_minor order by l.id), array_agg(l.entry_count order by l.id),
         array_agg(l.last_entry_hash order by l.id)
    into a_id, a_code, a_currency, a_balance, a_count, a_hash
    from (select a.* from ledger_accounts a
           where a.code in (select 'wallet:' || (e ->> 'accountId') from jsonb_array_elements(p_events) e
                            union
                            select p.prefix || (e ->> 'currency') from jsonb_array_elements(p_events) e
                             cross join (values ('in_transit:'), ('provider_clearing:'), ('funding:')) as p(prefix))
           order by a.id
             for update) l;
  -- the batch's time is taken once its accounts are locked: along every account's sequence,
  -- created_at then never decreases (a batch that waited for a lock is dated after the one it
  -- waited for), which the daily checkpoints rely on (sql/ledger/functions/ledger_close_day.sql)
  v_at := clock_timestamp();

  -- the journals the events ask for (a settle or reverse asks for its hold too), the first ask of
  -- each (transaction, kind) winning, minus those already posted (read after the locks: a
  -- concurrent batch of the same accounts has committed by now)
  with events as (
    select n, e ->> 'source' as source, (e ->> 'transactionId')::uuid as tx, e ->> 'kind' as kind,
           'wallet:' || (e ->> 'accountId') as wallet, e ->> 'currency' as currency, (e ->> 'amountMinor')::bigint as amount
      from jsonb_array_elements(p_events) with ordinality as x(e, n)
  ), asked as (
    select ev.n, 1 as sub, ev.tx, ev.kind, ev.source, ev.amount, ev.currency,
           case ev.kind when 'deposit' then 'funding:' || ev.currency when 'hold' then ev.wallet
                        else 'in_transit:' || ev.currency end as debit,
           case ev.kind when 'deposit' then ev.wallet when 'hold' then 'in_transit:' || ev.currency
                        when 'settle' then 'provider_clearing:' || ev.currency else ev.wallet end as credit
      from events ev
    union all
    select ev.n, 0, ev.tx, 'hold', ev.source, ev.amount, ev.currency, ev.wallet, 'in_transit:' || ev.currency
      from events ev where ev.kind in ('settle', 'reverse')
  ), firsts as (
    select distinct on (a.tx, a.kind) a.* from asked a order by a.tx, a.kind, a.n, a.sub
  ), fresh as (
    select f.* from firsts f
     where not exists (select 1 from journal_transactions j where j.transaction_id = f.tx and j.kind = f.kind)
  )
  select array_agg(nextval(pg_get_serial_sequence('journal_transactions', 'id')) order by f.n, f.sub),
         array_agg(f.tx order by f.n, f.sub), array_agg(f.kind order by f.n, f.sub), array_agg(f.source order by f.n, f.sub),
         array_agg(f.amount order by f.n, f.sub), array_agg(f.currency order by f.n, f.sub),
         array_agg(f.debit order by f.n, f.sub), array_agg(f.credit order by f.n, f.sub), array_agg(f.sub order by f.n, f.sub),
         array_agg(f.n order by f.n, f.sub)
    into j_id, j_tx, j_kind, j_source, j_amount, j_currency, j_debit, j_credit, j_sub, j_n
    from (select * from fresh order by n, sub) f;

  -- what leaves in-transit must be exactly what the hold put there: a settle or reverse against the
  -- hold posted before, or against the hold this batch posts
  select string_agg(ev.tx::text, ', ') into v_bad
    from (select (e ->> 'transactionId')::uuid as tx, (e ->> 'amountMinor')::bigint as amount, e ->> 'currency' as currency
            from jsonb_array_elements(p_events) e where e ->> 'kind' in ('settle', 'reverse')) ev
   where exists (select 1 from journal_transactions j join entries en on en.journal_id = j.id
                  where j.transaction_id = ev.tx and j.kind = 'hold' and en.amount_minor < 0
                    and (en.amount_minor <> -ev.amount or en.currency <> ev.currency))
      or exists (select 1 from unnest(j_tx, j_kind, j_amount, j_currency) as h(tx, kind, amount, currency)
                  where h.tx = ev.tx and h.kind = 'hold' and (h.amount <> ev.amount or h.currency <> ev.currency));
  if v_bad is not null then
    raise exception 'withdraw %: its settle or reverse does not match its hold', v_bad
      using errcode = 'check_violation', constraint = 'ledger_release_matches_hold';
  end if;

  -- one pass over the new entries in (account, posting) order: sequence, running balance, hash chain
  for v_entry in
    select a.ord as account_index, a.id as account_id, jt.journal_id, jt.tx, jt.kind, jt.amount, jt.currency,
           jt.ord * 2 + jt.side as position
      from (select j.ord, s.side, j.id as journal_id, j.tx, j.kind, j.currency,
                   case s.side when 0 then j.amount else -j.amount end as amount,
                   case s.side when 0 then j.debit else j.credit end as code
              from unnest(j_id, j_tx, j_kind, j_amount, j_currency, j_debit, j_credit)
                     with ordinality as j(id, tx, kind, amount, currency, debit, credit, ord)
             cross join (values (0), (1)) as s(side)) jt
      join unnest(a_id, a_code) with ordinality as a(id, code, ord) on a.code = jt.code
     order by a.ord, jt.ord, jt.side
  loop
    v_i := v_entry.account_index;
    if a_currency[v_i] <> v_entry.currency then
      raise exception 'ledger account % is %, entry is %', a_code[v_i], a_currency[v_i], v_entry.currency
        using errcode = 'check_violation', constraint = 'entries_currency_matches_account';
    end if;
    v_n := v_n + 1;
    e_journal[v_n] := v_entry.journal_id;
    e_position[v_n] := v_entry.position;
    e_account[v_n] := v_entry.account_id;
    e_amount[v_n] := v_entry.amount;
    e_currency[v_n] := v_entry.currency;
    e_sequence[v_n] := a_count[v_i] + 1;
    e_previous_balance[v_n] := a_balance[v_i];
    e_balance[v_n] := a_balance[v_i] + v_entry.amount;
    e_previous_hash[v_n] := a_hash[v_i];
    e_hash[v_n] := ledger_entry_hash(a_hash[v_i], v_entry.account_id, a_count[v_i] + 1, v_entry.journal_id, v_entry.tx,
                                     v_entry.kind, v_entry.amount, v_entry.currency, a_balance[v_i],
                                     a_balance[v_i] + v_entry.amount, v_at);
    a_count[v_i] := a_count[v_i] + 1;
    a_balance[v_i] := e_balance[v_n];
    a_hash[v_i] := e_hash[v_n];
  end loop;

  if v_n > 0 then
    with journals as (
      insert into journal_transactions (id, transaction_id, kind, source, created_at) overriding system value
      select j.id, j.tx, j.kind, j.source, v_at from unnest(j_id, j_tx, j_kind, j_source) as j(id, tx, kind, source)
    )
    insert into entries (journal_id, ledger_account_id, amount_minor, currency, account_sequence,
                         previous_balance_minor, current_balance_minor, previous_hash, hash, created_at)
    select e.journal_id, e.account_id, e.amount, e.currency, e.sequence, e.previous_balance, e.balance, e.previous_hash, e.hash, v_at
      from unnest(e_journal, e_account, e_amount, e_currency, e_sequence, e_previous_balance, e_balance, e_previous_hash, e_hash,
                  e_position)
             as e(journal_id, account_id, amount, currency, sequence, previous_balance, balance, previous_hash, hash, position)
     -- entry ids in posting order: a journal's debit, then its credit
     order by e.position;

    -- each account's projection once, to its last entry's state
    update ledger_accounts l
       set balance_minor = a.balance, entry_count = a.count, last_entry_hash = a.hash
      from unnest(a_id, a_balance, a_count, a_hash) as a(id, balance, count, hash)
     where l.id = a.id and l.entry_count <> a.count;

    -- a hold asked for by its own event (not one a settle or reverse implied: that withdrawal is past submission)
    insert into outbox (topic, transaction_id, payload)
    select 'ledger.held', j.tx, jsonb_build_object('transactionId', j.tx, 'journalId', j.id)
      from unnest(j_id, j_tx, j_kind, j_sub) with ordinality as j(id, tx, kind, sub, ord)
     where j.kind = 'hold' and j.sub = 1
     order by j.ord;
  end if;

  -- one row per event, in order: its own journal, and whether this call posted it for that event
  -- (not for an earlier event of the batch, nor on the way to a settle or reverse)
  return query
    select ev.tx, ev.kind, coalesce(fresh.id, j.id), coalesce(fresh.n = ev.n and fresh.sub = 1, false)
      from (select n, (e ->> 'transactionId')::uuid as tx, e ->> 'kind' as kind
              from jsonb_array_elements(p_events) with ordinality as x(e, n)) ev
      left join unnest(j_id, j_tx, j_kind, j_sub, j_n) as fresh(id, tx, kind, sub, n) on fresh.tx = ev.tx and fresh.kind = ev.kind
      left join journal_transactions j on fresh.id is null and j.transaction_id = ev.tx and j.kind = ev.kind
     order by ev.n;
end $$;
