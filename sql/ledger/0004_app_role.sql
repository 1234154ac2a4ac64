-- Up Migration
-- I4 by privileges as well as by trigger. The application's Ledger DB pool runs as
-- withdraw_ledger_writer (LEDGER_DB_ROLE, app/db/pools.ts), which may append to entries and
-- journal_transactions but never update, delete or truncate them. The table owner can disable a
-- trigger; the writer cannot, and without the privilege the statement fails before any trigger.
--
-- Roles belong to the whole cluster, so the role is created only when it does not exist and the
-- migrating user may create roles. Where it may not (a managed database), the DBA creates the role
-- (`create role withdraw_ledger_writer nologin`, then grants it to the application's login user)
-- before this migration runs; the grants below only need the role to exist.
--
-- A later migration that adds a table, sequence or function the application uses on the Ledger
-- DB grants it to withdraw_ledger_writer as well: nothing is granted by default.
do $$
declare
  v_may_create_roles boolean;
  v_can_set_role boolean;
begin
  if not exists (select 1 from pg_roles where rolname = 'withdraw_ledger_writer') then
    select r.rolcreaterole or r.rolsuper into v_may_create_roles from pg_roles r where r.rolname = current_user;
    if not coalesce(v_may_create_roles, false) then
      raise notice 'role withdraw_ledger_writer does not exist and % may not create roles: skipped; the application runs as its login user until a DBA creates the role and applies the grants of sql/ledger/0004_app_role.sql',
        current_user;
      return;
    end if;
    begin
      create role withdraw_ledger_writer nologin;
    exception when duplicate_object or unique_violation then
      null; -- created at this instant by the migration of another database in the same cluster
    end;
  end if;

  -- the application may assume the role only with SET on it (PostgreSQL 16+); a role's creator
  -- that is not a superuser holds only ADMIN on it, so grant the migrating user the role itself
  -- (on a PaaS it is usually also the application's login user)
  if current_setting('server_version_num')::int >= 160000 then
    v_can_set_role := pg_has_role(current_user, 'withdraw_ledger_writer', 'SET');
  else
    v_can_set_role := pg_has_role(current_user, 'withdraw_ledger_writer', 'MEMBER');
  end if;
  if not v_can_set_role then
    begin
      execute format('grant withdraw_ledger_writer to %I', current_user);
    exception when insufficient_privilege or invalid_grant_operation then
      raise notice '% may not grant itself withdraw_ledger_writer: a DBA grants it to the application''s login user',
        current_user;
    end;
  end if;

  grant usage on schema public to withdraw_ledger_writer;
  -- append-only: never update, delete or truncate
  grant select, insert on entries, journal_transactions to withdraw_ledger_writer;
  -- the running-balance projection that ledger_append_entry keeps (and locks FOR UPDATE)
  grant select, insert, update on ledger_accounts to withdraw_ledger_writer;
  -- the relay claims FOR UPDATE and marks rows relayed; pruneRelayedOutbox (app/outbox/relays.ts)
  -- deletes relayed rows past their retention
  grant select, insert, update, delete on outbox to withdraw_ledger_writer;
  -- readiness (/readyz) compares the applied migrations with the shipped ones
  grant select on schema_migrations to withdraw_ledger_writer;
  execute format('grant usage on sequence %s, %s, %s, %s to withdraw_ledger_writer',
    pg_get_serial_sequence('ledger_accounts', 'id'), pg_get_serial_sequence('journal_transactions', 'id'),
    pg_get_serial_sequence('entries', 'id'), pg_get_serial_sequence('outbox', 'id'));
end $$;
