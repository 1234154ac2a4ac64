-- Up Migration
-- Finance reports (sql/reports/, `npm run report`): the read-only role they run as, the two
-- formatting helpers they share with the Ledger DB, and the index that keeps daily-withdrawals fast.

-- withdraw_reporter: NOLOGIN, SELECT only. Roles are cluster-wide, so the Ledger DB's migration finds
-- it already there on a shared server. A user that may not create roles (a managed database, say)
-- skips the creation with a NOTICE: the DBA creates it (CREATE ROLE withdraw_reporter NOLOGIN; GRANT
-- withdraw_reporter TO <app user>) and re-runs the grants below. The report runner uses the role only
-- when it exists and the session may SET ROLE to it; the READ ONLY transaction protects either way.
do $$
declare
  v_may_create boolean;
  v_superuser boolean;
begin
  select r.rolcreaterole or r.rolsuper, r.rolsuper into v_may_create, v_superuser
    from pg_roles r where r.rolname = current_user;
  if not exists (select 1 from pg_roles where rolname = 'withdraw_reporter') then
    if v_may_create then
      begin
        create role withdraw_reporter nologin;
      exception when duplicate_object then
        null; -- created at the same instant by the other database's migration
      end;
      if not v_superuser then
        -- since PostgreSQL 16 the creator holds ADMIN on the role but may SET ROLE to it only once
        -- granted SET as well
        begin
          execute format('grant withdraw_reporter to %I with set true, inherit false', current_user);
        exception when others then
          raise notice 'role withdraw_reporter: could not grant SET on it to %: %', current_user, sqlerrm;
        end;
      end if;
    else
      raise notice 'role withdraw_reporter not created: % may not create roles (a DBA may create it, NOLOGIN, and grant it to the app user); reports run without it', current_user;
    end if;
  end if;
  if exists (select 1 from pg_roles where rolname = 'withdraw_reporter') then
    grant usage on schema public to withdraw_reporter;
    grant select on all tables in schema public to withdraw_reporter;
    alter default privileges in schema public grant select on tables to withdraw_reporter;
  end if;
end $$;

-- Minor units (an exact integer: a bigint or a sum of bigints) as a decimal string with exactly the
-- currency's decimals, like formatMinor in app/money/money.ts: 12312 USD → '123.12', -5 → '-0.05'.
-- Text arithmetic on the integer's digits, never a float. The exponents mirror CURRENCY_EXPONENTS.
create function format_minor(p_amount_minor numeric, p_currency text) returns text
language plpgsql immutable strict parallel safe as $$
declare
  v_exponent int := case p_currency when 'USD' then 2 when 'EUR' then 2 when 'GBP' then 2 when 'JPY' then 0 end;
  v_digits text;
begin
  if v_exponent is null then
    raise exception 'format_minor: unknown currency %', p_currency using errcode = 'invalid_parameter_value';
  end if;
  if p_amount_minor <> trunc(p_amount_minor) then
    raise exception 'format_minor: % is not a whole number of minor units', p_amount_minor
      using errcode = 'invalid_parameter_value';
  end if;
  v_digits := trunc(abs(p_amount_minor))::text;
  -- lpad truncates a longer string, so never ask for fewer characters than there are
  v_digits := lpad(v_digits, greatest(length(v_digits), v_exponent + 1), '0');
  return case when p_amount_minor < 0 then '-' else '' end
      || case when v_exponent = 0 then v_digits
              else left(v_digits, -v_exponent) || '.' || right(v_digits, v_exponent) end;
end $$;

-- An instant as ISO 8601 in UTC with milliseconds, the form of JavaScript's toISOString().
create function format_utc(p_at timestamptz) returns text
language sql stable strict parallel safe as $$
  select to_char(p_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;

-- daily-withdrawals filters on created_at and reads only these three columns besides, so a bounded
-- range is an index-only scan (all of history is a parallel sequential scan). Status changes already miss HOT (withdraw_orders_open_idx holds status), so the cost on
-- the write path is one more index entry per insert and per transition.
create index withdraw_orders_created_idx on withdraw_orders (created_at) include (status, currency, amount_minor);
-- Without it the planner guesses one group per row for daily-withdrawals' (UTC day, status,
-- currency) and sorts a million rows to disk instead of hashing a few thousand groups.
-- noqa: disable=all
create statistics withdraw_orders_created_day_stats (ndistinct)
  on ((created_at at time zone 'UTC')::date), status, currency from withdraw_orders;
-- noqa: enable=all

-- Down Migration
-- noqa: disable=all
drop statistics withdraw_orders_created_day_stats;
-- noqa: enable=all
drop index withdraw_orders_created_idx;
drop function format_utc, format_minor;
do $$
begin
  -- the role itself stays: it is cluster-wide and the Ledger DB (or a DBA) may still use it
  if exists (select 1 from pg_roles where rolname = 'withdraw_reporter') then
    alter default privileges in schema public revoke select on tables from withdraw_reporter;
    revoke select on all tables in schema public from withdraw_reporter;
    revoke usage on schema public from withdraw_reporter;
  end if;
end $$;
