-- Up Migration
-- ledger_post posts a batch set-based (sql/ledger/functions/ledger_post.sql): the per-journal and
-- per-entry helpers it called are gone, and journal_must_balance checks once per statement (its
-- file creates the statement triggers; a constraint trigger cannot be replaced in place).
drop function if exists ledger_post_journal(uuid, text, text, text, text, bigint, text, timestamptz);
drop function if exists ledger_append_entry(bigint, uuid, text, bigint, bigint, text, timestamptz);
drop trigger if exists journal_transactions_balanced on journal_transactions;
drop trigger if exists entries_balanced on entries;
