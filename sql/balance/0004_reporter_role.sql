-- Up Migration
-- Finance reports (sql/reports/, `npm run report`): the read-only role they run as and the index
-- that keeps daily-withdrawals fast (their formatting helpers are format_minor and format_utc).

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

-- daily-withdrawals filters on created_at and reads only these three columns besides, so a bounded
-- range is an index-only scan (all of history is a parallel sequential scan). Status changes
-- already miss HOT (withdraw_orders_open_idx holds status), so the cost on the write path is one more index entry per insert and per transition.
create index withdraw_orders_created_idx on withdraw_orders (created_at) include (status, currency, amount_minor);
-- Without it the planner guesses one group per row for daily-withdrawals' (UTC day, status,
-- currency) and sorts a million rows to disk instead of hashing a few thousand groups.
-- noqa: disable=all
create statistics withdraw_orders_created_day_stats (ndistinct)
  on ((created_at at time zone 'UTC')::date), status, currency from withdraw_orders;
-- noqa: enable=all
