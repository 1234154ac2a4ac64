-- Places withdraw orders, one or many in one call, in the caller's transaction: the one place
-- where an order, its reservation, its first history row and its outbox event are written
-- (POST /withdraw through withdraw_create, a bulk payout through withdraw_batch_place, and any group
-- of requests committed together). Idempotency and replies are the caller's; this function decides
-- each order on its merits, in input order, against what the earlier ones took.
--
-- p_orders: json array of {"userId", "accountId", "toAccountId", "amountMinor", "currency",
-- "orderId", "transactionId"}. Returns one row per order, in order (n from 1): created,
-- account_not_found, forbidden (another user's account), account_unusable (frozen, closed, another
-- currency), insufficient_funds, limit_exceeded.
--
-- Limits are checked inside the reservation transaction: the daily limit serializes one user's
-- withdrawals in one currency (an advisory lock), so concurrent requests cannot both pass. Lock
-- order: those advisory locks (sorted), then the accounts (by id): concurrent calls never wait on
-- each other in a cycle. Each reservation (available -= x, reserved += x) is guarded, and the
-- accounts' CHECKs guard it again: available never goes below zero.
create or replace function withdraw_place_orders(p_orders json)
returns table (n int, outcome text)
language plpgsql as $$
#variable_conflict use_column
declare
  v_order record;
  v_account accounts%rowtype;
  v_order_max bigint;
  v_daily_max bigint;
  v_used bigint;
  v_outcome text;
begin
  perform pg_advisory_xact_lock(hashtextextended('withdraw-limit/' || w.user_id || '/' || w.currency, 0))
     from (select distinct o."userId" as user_id, o.currency
             from json_to_recordset(p_orders) as o ("userId" text, "accountId" uuid, currency text)
             join accounts a on a.id = o."accountId" and a.user_id = o."userId" and a.currency = o.currency
             left join withdraw_limit_defaults d on d.currency = a.currency
            where coalesce(a.withdraw_daily_max_minor, d.daily_max_minor) is not null
            order by 1, 2) w;
  perform 1 from accounts a
   where a.id in (select (x ->> 'accountId')::uuid from json_array_elements(p_orders) x)
   order by a.id
     for no key update;

  for v_order in
    select k::int as n, x ->> 'userId' as user_id, (x ->> 'accountId')::uuid as account_id, x ->> 'toAccountId' as to_account_id,
           (x ->> 'amountMinor')::bigint as amount_minor, x ->> 'currency' as currency, (x ->> 'orderId')::uuid as order_id,
           (x ->> 'transactionId')::uuid as transaction_id
      from json_array_elements(p_orders) with ordinality as e(x, k)
     order by k
  loop
    v_outcome := null;
    select coalesce(a.withdraw_order_max_minor, d.order_max_minor), coalesce(a.withdraw_daily_max_minor, d.daily_max_minor)
      into v_order_max, v_daily_max
      from accounts a left join withdraw_limit_defaults d on d.currency = a.currency
     where a.id = v_order.account_id and a.user_id = v_order.user_id and a.currency = v_order.currency;
    if v_order_max is not null and v_order.amount_minor > v_order_max then
      v_outcome := 'limit_exceeded';
    elsif v_daily_max is not null then
      select coalesce(sum(o.amount_minor), 0) into v_used from withdraw_orders o
       where o.user_id = v_order.user_id and o.currency = v_order.currency
         and o.created_at > now() - interval '24 hours' and o.status <> 'failed';
      if v_used + v_order.amount_minor > v_daily_max then
        v_outcome := 'limit_exceeded';
      end if;
    end if;

    if v_outcome is null then
      update accounts a
         set available_minor = a.available_minor - v_order.amount_minor,
             reserved_minor = a.reserved_minor + v_order.amount_minor,
             version = a.version + 1,
             updated_at = now()
       where a.id = v_order.account_id and a.user_id = v_order.user_id and a.currency = v_order.currency
         and a.status = 'active' and a.available_minor >= v_order.amount_minor
      returning * into v_account;
      if found then
        v_outcome := 'created';
      else
        select * into v_account from accounts a where a.id = v_order.account_id;
        v_outcome := case
          when not found then 'account_not_found'
          when v_account.user_id <> v_order.user_id then 'forbidden'
          when v_account.status <> 'active' or v_account.currency <> v_order.currency then 'account_unusable'
          else 'insufficient_funds' end;
      end if;
    end if;

    if v_outcome = 'created' then
      insert into withdraw_orders (id, transaction_id, user_id, account_id, to_account_id, amount_minor, currency, status)
      values (v_order.order_id, v_order.transaction_id, v_order.user_id, v_order.account_id, v_order.to_account_id,
              v_order.amount_minor, v_order.currency, 'init');
      insert into reservations (transaction_id, account_id, amount_minor, status)
      values (v_order.transaction_id, v_order.account_id, v_order.amount_minor, 'held');
      insert into withdraw_status_history (order_id, from_status, to_status, actor, actor_id, reason)
      values (v_order.order_id, null, 'init', 'api', v_order.user_id, 'withdraw requested');
      insert into outbox (topic, transaction_id, payload)
      values ('withdraw.created', v_order.transaction_id, jsonb_build_object(
        'transactionId', v_order.transaction_id, 'orderId', v_order.order_id, 'accountId', v_order.account_id,
        'userId', v_order.user_id, 'toAccountId', v_order.to_account_id,
        'amountMinor', v_order.amount_minor::text, 'currency', v_order.currency));
    end if;
    return query select v_order.n, v_outcome;
  end loop;
end $$;
