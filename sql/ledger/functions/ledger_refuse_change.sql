-- Append-only, enforced here and not only in code: UPDATE, DELETE and TRUNCATE fail.
create or replace function ledger_refuse_change() returns trigger language plpgsql as $$
begin
  raise exception 'ledger table % is append-only: % refused', tg_table_name, tg_op
    using errcode = 'insufficient_privilege', hint = 'corrections are new entries, never edits';
end $$;

create or replace trigger entries_append_only before update or delete on entries
  for each row execute function ledger_refuse_change();
create or replace trigger entries_no_truncate before truncate on entries
  for each statement execute function ledger_refuse_change();
create or replace trigger journal_transactions_append_only before update or delete on journal_transactions
  for each row execute function ledger_refuse_change();
create or replace trigger journal_transactions_no_truncate before truncate on journal_transactions
  for each statement execute function ledger_refuse_change();
