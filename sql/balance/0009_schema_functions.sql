-- Up Migration
-- What `npm run migrate` applied from sql/balance/functions/: one row per file with the SHA-256 of
-- its text, so readiness can tell a database whose functions are not the ones this build ships.
create table schema_functions (
  file text primary key,
  sha256 text not null,
  applied_at timestamptz not null default now()
);
