-- Up Migration
-- The asynchronous half: state transitions with capture/release, the provider callback inbox,
-- gateway submission attempts (evidence), reconciliation breaks, worker heartbeats, the relay.

-- Lock order, everywhere: the account row first, then the order row. withdraw_create takes the
-- account and inserts a new order, so no two transactions can wait on each other in a cycle.
create function withdraw_lock(p_transaction_id uuid) returns withdraw_orders
language plpgsql as $$
declare
  v_account_id uuid;
  v_order withdraw_orders%rowtype;
begin
  select o.account_id into v_account_id from withdraw_orders o where o.transaction_id = p_transaction_id;
  if not found then
    return null;
  end if;
  perform 1 from accounts a where a.id = v_account_id for update;
  select * into v_order from withdraw_orders o where o.transaction_id = p_transaction_id for update;
  return v_order;
end $$;

-- Every transition: conditional on the expected states, with money moved (success captures the
-- reservation, failed releases it), the history row and the outbox event, all in the caller's
-- transaction.
create function withdraw_transition(
  p_transaction_id uuid,
  p_from text[],
  p_to text,
  p_actor text,
  p_actor_id text,
  p_reason text,
  p_evidence jsonb default null,
  p_failure_reason text default null
) returns table (outcome text, order_id uuid, previous_status text, status text)
language plpgsql as $$
#variable_conflict use_column
declare
  v_order withdraw_orders%rowtype;
  v_reservation reservations%rowtype;
begin
  v_order := withdraw_lock(p_transaction_id);
  if v_order.id is null then
    return query select 'not_found'::text, null::uuid, null::text, null::text;
    return;
  end if;
  if v_order.status = p_to then
    return query select 'unchanged'::text, v_order.id, v_order.status, v_order.status;
    return;
  end if;
  if not (v_order.status = any (p_from)) then
    return query select 'conflict'::text, v_order.id, v_order.status, v_order.status;
    return;
  end if;

  if p_to in ('success', 'failed') then
    update reservations r
       set status = case when p_to = 'success' then 'captured' else 'released' end
     where r.transaction_id = p_transaction_id and r.status = 'held'
    returning * into v_reservation;
    if not found then
      raise exception 'withdraw %: its reservation is not held', p_transaction_id
        using errcode = 'check_violation', constraint = 'reservations_held_until_final';
    end if;
    if p_to = 'success' then
      update accounts a
         set balance_minor = a.balance_minor - v_reservation.amount_minor,
             reserved_minor = a.reserved_minor - v_reservation.amount_minor,
             version = a.version + 1, updated_at = now()
       where a.id = v_reservation.account_id;
    else
      update accounts a
         set available_minor = a.available_minor + v_reservation.amount_minor,
             reserved_minor = a.reserved_minor - v_reservation.amount_minor,
             version = a.version + 1, updated_at = now()
       where a.id = v_reservation.account_id;
    end if;
  end if;

  update withdraw_orders o
     set status = p_to,
         failure_reason = case when p_to = 'failed' then coalesce(p_failure_reason, o.failure_reason, p_reason)
                               else o.failure_reason end
   where o.id = v_order.id;

  insert into withdraw_status_history (order_id, from_status, to_status, actor, actor_id, reason, evidence)
  values (v_order.id, v_order.status, p_to, p_actor, p_actor_id, p_reason, p_evidence);

  insert into outbox (topic, transaction_id, payload)
  values ('withdraw.' || p_to, p_transaction_id, jsonb_build_object(
    'transactionId', p_transaction_id, 'orderId', v_order.id, 'accountId', v_order.account_id,
    'userId', v_order.user_id, 'toAccountId', v_order.to_account_id,
    'amountMinor', v_order.amount_minor::text, 'currency', v_order.currency,
    'fromStatus', v_order.status, 'status', p_to, 'actor', p_actor,
    'failureReason', case when p_to = 'failed' then coalesce(p_failure_reason, p_reason) end));

  -- long-polling clients are woken by the relay, once per batch (see outbox_relay_balance)
  return query select 'changed'::text, v_order.id, v_order.status, p_to;
end $$;

-- Reconciliation breaks: what disagrees, where, first and last seen; one open break per
-- (category, subject), re-detection bumps last_seen_at.
create table reconciliation_breaks (
  id bigint generated always as identity primary key,
  category text not null,
  subject text not null,
  order_id uuid,
  account_id uuid,
  transaction_id uuid,
  currency text,
  expected text,
  actual text,
  details jsonb not null default '{}',
  first_seen_at timestamptz not null default now(),
  last_seen_at timestamptz not null default now(),
  seen_count int not null default 1,
  resolved_at timestamptz,
  resolution text,
  constraint reconciliation_breaks_resolution_complete check ((resolved_at is null) = (resolution is null))
);
create unique index reconciliation_breaks_open_key on reconciliation_breaks (category, subject) where resolved_at is null;
create index reconciliation_breaks_open_idx on reconciliation_breaks (first_seen_at) where resolved_at is null;

create function reconciliation_record_break(
  p_category text, p_subject text, p_order_id uuid, p_account_id uuid, p_transaction_id uuid,
  p_currency text, p_expected text, p_actual text, p_details jsonb
) returns bigint language plpgsql as $$
declare
  v_id bigint;
begin
  insert into reconciliation_breaks (category, subject, order_id, account_id, transaction_id, currency, expected, actual, details)
  values (p_category, p_subject, p_order_id, p_account_id, p_transaction_id, p_currency, p_expected, p_actual, coalesce(p_details, '{}'))
  on conflict (category, subject) where resolved_at is null
  do update set last_seen_at = now(), seen_count = reconciliation_breaks.seen_count + 1,
                expected = excluded.expected, actual = excluded.actual, details = excluded.details
  returning id into v_id;
  return v_id;
end $$;

-- Provider callbacks, stored before the 200 and applied by the worker.
create table gateway_inbox (
  id bigint generated always as identity primary key,
  event_id text not null constraint gateway_inbox_event_id_key unique,
  reference text not null,
  status text not null constraint gateway_inbox_status_known check (status in ('paid', 'failed')),
  failure_code text,
  occurred_at timestamptz not null,
  payload jsonb not null,
  signed_at timestamptz not null,
  received_at timestamptz not null default now(),
  processed_at timestamptz,
  outcome text,
  attempts int not null default 0,
  last_error text
);
create index gateway_inbox_pending_idx on gateway_inbox (id) where processed_at is null;
create index gateway_inbox_reference_idx on gateway_inbox (reference);

-- Only the first pending callback notifies (see outbox_notify for why).
create function gateway_inbox_notify() returns trigger language plpgsql as $$
begin
  if not exists (select 1 from gateway_inbox i
                  where i.processed_at is null and i.id < (select min(n.id) from inbox_new_rows n)) then
    perform pg_notify('gateway_inbox', '');
  end if;
  return null;
end $$;
create trigger gateway_inbox_notify after insert on gateway_inbox referencing new table as inbox_new_rows
  for each statement execute function gateway_inbox_notify();

-- One callback against the order it names. A callback never moves money against a final state:
-- a contradiction is a reconciliation break for a human.
create function gateway_apply_callback(p_inbox gateway_inbox) returns text
language plpgsql as $$
declare
  v_reference uuid;
  v_order withdraw_orders%rowtype;
  v_evidence jsonb := jsonb_build_object('inboxId', p_inbox.id, 'eventId', p_inbox.event_id,
    'status', p_inbox.status, 'failureCode', p_inbox.failure_code, 'occurredAt', p_inbox.occurred_at);
begin
  if p_inbox.reference ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    v_reference := p_inbox.reference::uuid;
    v_order := withdraw_lock(v_reference);
  end if;
  if v_order.id is null then
    perform reconciliation_record_break('callback_unknown_reference', 'event:' || p_inbox.event_id, null, null,
      v_reference, null, 'a withdraw order with this reference', 'none', v_evidence);
    return 'unknown_reference';
  end if;

  if p_inbox.status = 'paid' then
    if v_order.status = 'success' then
      return 'duplicate';
    elsif v_order.status = 'failed' then
      perform reconciliation_record_break('callback_contradicts_final', 'order:' || v_order.id, v_order.id,
        v_order.account_id, v_order.transaction_id, v_order.currency, 'failed', 'provider reports paid', v_evidence);
      return 'contradiction';
    end if;
    if v_order.status = 'init' then
      perform withdraw_transition(v_reference, array['init'], 'processing', 'provider', p_inbox.event_id,
        'provider callback implies acceptance', v_evidence);
    end if;
    perform withdraw_transition(v_reference, array['processing', 'manual'], 'success', 'provider', p_inbox.event_id,
      'provider reported paid', v_evidence);
    return 'applied';
  end if;

  -- failed
  if v_order.status = 'failed' then
    return 'duplicate';
  elsif v_order.status = 'success' then
    perform reconciliation_record_break('callback_contradicts_final', 'order:' || v_order.id, v_order.id,
      v_order.account_id, v_order.transaction_id, v_order.currency, 'success', 'provider reports failed', v_evidence);
    return 'contradiction';
  end if;
  perform withdraw_transition(v_reference, array['init', 'processing', 'manual'], 'failed', 'provider', p_inbox.event_id,
    'provider reported failed', v_evidence, coalesce(p_inbox.failure_code, 'provider_failed'));
  return 'applied';
end $$;

-- Applies a batch of pending callbacks in one transaction. Rows are taken in account order so
-- that account locks are always acquired in ascending order (no deadlocks between batches).
create function gateway_inbox_apply(p_batch_size int)
returns table (inbox_id bigint, event_id text, outcome text)
language plpgsql as $$
#variable_conflict use_column
declare
  v_inbox gateway_inbox%rowtype;
  v_outcome text;
begin
  for v_inbox in
    select i.* from gateway_inbox i
      left join withdraw_orders o
        on o.transaction_id = case when i.reference ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                                   then i.reference::uuid end
     where i.processed_at is null
     order by o.account_id nulls first, i.id
     limit p_batch_size
       for update of i skip locked
  loop
    v_outcome := gateway_apply_callback(v_inbox);
    update gateway_inbox g set processed_at = now(), outcome = v_outcome, attempts = g.attempts + 1
     where g.id = v_inbox.id;
    return query select v_inbox.id, v_inbox.event_id, v_outcome;
  end loop;
end $$;

-- Every call to the provider, with what came back: the evidence behind manual review.
create table gateway_submit_attempts (
  id bigint generated always as identity primary key,
  transaction_id uuid not null references withdraw_orders (transaction_id),
  result text not null constraint gateway_submit_attempts_result_known check (result in ('accepted', 'rejected', 'unknown')),
  http_status int,
  detail jsonb not null default '{}',
  duration_ms int,
  created_at timestamptz not null default now()
);
create index gateway_submit_attempts_tx_idx on gateway_submit_attempts (transaction_id, id);

-- Records one submission attempt and acts on it, in one transaction: accepted → processing,
-- rejected → failed (released), unknown → a retry job at the backoff time, or manual once the
-- attempts are spent. Money is never released while the outcome is unknown.
create function gateway_submit_result(
  p_transaction_id uuid, p_result text, p_http_status int, p_detail jsonb, p_duration_ms int,
  p_attempts_max int, p_retry_base_ms int, p_retry_max_ms int, p_failure_code text default null
) returns table (outcome text, attempt int, retry_at timestamptz)
language plpgsql as $$
#variable_conflict use_column
declare
  v_attempt int;
  v_delay_ms double precision;
  v_retry_at timestamptz;
  v_transition text;
  v_evidence jsonb;
begin
  insert into gateway_submit_attempts (transaction_id, result, http_status, detail, duration_ms)
  values (p_transaction_id, p_result, p_http_status, coalesce(p_detail, '{}'), p_duration_ms);
  select count(*) into v_attempt from gateway_submit_attempts a
   where a.transaction_id = p_transaction_id and a.result = 'unknown';
  v_evidence := jsonb_build_object('result', p_result, 'httpStatus', p_http_status, 'detail', p_detail,
                                   'unknownAttempts', v_attempt);

  if p_result = 'accepted' then
    select t.outcome into v_transition from withdraw_transition(p_transaction_id, array['init'], 'processing', 'job',
      'gateway__submit', 'provider accepted the payout', v_evidence) t;
    return query select 'processing:' || v_transition, v_attempt, null::timestamptz;
  elsif p_result = 'rejected' then
    select t.outcome into v_transition from withdraw_transition(p_transaction_id, array['init'], 'failed', 'job',
      'gateway__submit', 'provider rejected the payout', v_evidence, coalesce(p_failure_code, 'provider_rejected')) t;
    return query select 'failed:' || v_transition, v_attempt, null::timestamptz;
  elsif v_attempt >= p_attempts_max then
    select t.outcome into v_transition from withdraw_transition(p_transaction_id, array['init'], 'manual', 'job',
      'gateway__submit', 'outcome unknown after ' || v_attempt || ' attempts', v_evidence) t;
    return query select 'manual:' || v_transition, v_attempt, null::timestamptz;
  else
    -- exponential backoff with jitter (scheduling only; no money here)
    v_delay_ms := least(p_retry_base_ms * power(2, v_attempt - 1), p_retry_max_ms) * (0.5 + random() / 2);
    v_retry_at := now() + make_interval(secs => v_delay_ms / 1000.0);
    perform graphile_worker.add_job('gateway__submit',
      json_build_object('transactionId', p_transaction_id, 'source', 'retry'),
      run_at := v_retry_at, job_key := 'gateway-submit:' || p_transaction_id, job_key_mode := 'replace');
    return query select 'retry'::text, v_attempt, v_retry_at;
  end if;
end $$;

-- Claims a batch of the Balance outbox, enqueues one ledger__post job for the events the ledger
-- cares about, marks the batch relayed: one transaction (the queue lives in this database).
create function outbox_relay_balance(p_batch_size int) returns int
language plpgsql as $$
declare
  v_count int;
  v_events jsonb;
  v_statuses jsonb;
begin
  with claimed as (
    select o.id from outbox o where o.relayed_at is null order by o.id limit p_batch_size for update skip locked
  ), marked as (
    update outbox o set relayed_at = now() from claimed c where o.id = c.id
    returning o.id, o.topic, o.transaction_id, o.payload
  )
  select count(*)::int,
         coalesce(jsonb_agg(jsonb_build_object('outboxId', m.id, 'topic', m.topic, 'transactionId', m.transaction_id,
                                               'payload', m.payload) order by m.id)
                  filter (where m.topic in ('withdraw.created', 'withdraw.success', 'withdraw.failed', 'account.credited')),
                  '[]'::jsonb),
         coalesce(jsonb_agg(jsonb_build_object('payload', m.payload)) filter (where m.topic like 'withdraw.%'), '[]'::jsonb)
    into v_count, v_events, v_statuses
    from marked m;
  if jsonb_array_length(v_events) > 0 then
    perform graphile_worker.add_job('ledger__post', json_build_object('events', v_events));
  end if;
  -- wake long-polling clients of the orders whose status changed: one NOTIFY per 150 orders
  -- (payloads are limited to 8000 bytes) instead of one per transition
  perform pg_notify('withdraw_status', chunk.ids)
     from (select string_agg(e.value -> 'payload' ->> 'orderId', ',') as ids
             from jsonb_array_elements(v_statuses) with ordinality as e(value, n)
            group by (e.n - 1) / 150) chunk;
  return v_count;
end $$;

-- Worker heartbeats: the watchdog frees the jobs of workers that stopped beating.
create table worker_heartbeats (
  worker_id text primary key,
  hostname text not null,
  pid int not null,
  started_at timestamptz not null default now(),
  last_seen_at timestamptz not null default now()
);

-- Down Migration
drop function outbox_relay_balance, gateway_submit_result, gateway_inbox_apply, gateway_apply_callback,
  gateway_inbox_notify, reconciliation_record_break, withdraw_transition, withdraw_lock;
drop table worker_heartbeats, gateway_submit_attempts, gateway_inbox, reconciliation_breaks;
