-- Up Migration
-- The provider's daily settlement statements (`npm run settlement:import`, reconcile/settlements.ts)
-- and what reconciliation matches them with: one statement per UTC day is current; importing the
-- same content again changes nothing (statement_date, content_sha256 is unique); a changed
-- re-issue of a day is kept as 'conflicting' until finance replaces the current one with it.

create table settlement_statements (
  id bigint generated always as identity primary key,
  statement_date date not null,
  source text not null constraint settlement_statements_source_known check (source in ('provider', 'file')),
  -- the file's name, or the provider's URL it came from
  source_name text not null,
  -- SHA-256 of the statement's lines in canonical form: the same lines are the same statement,
  -- whatever their line ends or quoting
  content_sha256 text not null constraint settlement_statements_sha256_format check (content_sha256 ~ '^[0-9a-f]{64}$'),
  line_count int not null constraint settlement_statements_line_count_nonnegative check (line_count >= 0),
  state text not null constraint settlement_statements_state_known check (state in ('current', 'superseded', 'conflicting')),
  imported_by text not null,
  imported_at timestamptz not null default now(),
  -- when a re-issue replaced it (state superseded), and which statement did
  superseded_at timestamptz,
  superseded_by bigint references settlement_statements (id),
  constraint settlement_statements_content_key unique (statement_date, content_sha256),
  constraint settlement_statements_superseded_complete
    check ((state = 'superseded') = (superseded_at is not null and superseded_by is not null))
);
create unique index settlement_statements_current_key on settlement_statements (statement_date) where state = 'current';

-- One line of a statement, as the provider wrote it and as exact minor units.
create table settlement_lines (
  statement_id bigint not null references settlement_statements (id),
  -- 1 is the first line after the header
  line_number int not null constraint settlement_lines_line_number_positive check (line_number > 0),
  -- our transactionId when the line is ours (the provider's idempotency key), anything otherwise
  reference text not null,
  amount text not null,
  amount_minor bigint not null constraint settlement_lines_amount_positive check (amount_minor > 0),
  currency text not null constraint settlement_lines_currency_known check (currency in ('USD', 'EUR', 'GBP', 'JPY')),
  status text not null constraint settlement_lines_status_known check (status in ('paid', 'reversed')),
  settled_at timestamptz not null,
  fee text not null,
  fee_minor bigint not null constraint settlement_lines_fee_nonnegative check (fee_minor >= 0),
  primary key (statement_id, line_number)
);
create index settlement_lines_reference_idx on settlement_lines (reference);

-- Final orders by when they became final: the settlement matching looks for the paid orders of a
-- few days, and the provider check of reconciliation walks them in this order.
create index withdraw_orders_final_idx on withdraw_orders (updated_at, id) where status in ('success', 'failed');
