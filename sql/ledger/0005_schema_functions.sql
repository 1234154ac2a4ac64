-- Up Migration
-- What `npm run migrate` applied from sql/ledger/functions/: one row per file with the SHA-256 of
-- its text, so readiness can tell a database whose functions are not the ones this build ships.
create table schema_functions (
  file text primary key,
  sha256 text not null,
  applied_at timestamptz not null default now()
);
-- readiness reads it as the application's Ledger DB role (sql/ledger/0004_app_role.sql)
do $$
begin
  if exists (select 1 from pg_roles where rolname = 'withdraw_ledger_writer') then
    grant select on schema_functions to withdraw_ledger_writer;
  end if;
end $$;
