-- Up Migration
-- Finance reports (sql/reports/, `npm run report`): the read-only role they run as and the index
-- that keeps trial-balance fast (their formatting helpers are format_minor and format_utc).

-- withdraw_reporter: NOLOGIN, SELECT only. Roles are cluster-wide, so on a shared server the Balance
-- DB's migration has usually created it already; here it is created only if missing. A user that
-- may not create roles (a managed database, say) skips the creation with a NOTICE: the DBA creates
-- it (CREATE ROLE withdraw_reporter NOLOGIN; GRANT withdraw_reporter TO <app user>) and re-runs the
-- grants below. The report runner uses the role only when it exists and the session may SET ROLE
-- to it; the READ ONLY transaction protects either way.
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

-- trial-balance sums every entry posted before :to per account: with this index the scan is
-- index-only over about a quarter of the table's bytes (entries carry two hashes), and an as-of
-- :to in the past reads only the entries before it. Postings are asynchronous, off the hot path.
create index entries_created_idx on entries (created_at) include (ledger_account_id, amount_minor);
