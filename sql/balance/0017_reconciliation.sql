-- Up Migration
-- Reconciliation's provider checks (reconcile/providerChecks.ts) keep their cursors here, not in
-- the runs (a --full run never moves them): provider_first walks final orders right behind the
-- settle delay, provider_recheck a day behind.
create table reconciliation_cursors (
  name text primary key constraint reconciliation_cursors_name_known check (name in ('provider_first', 'provider_recheck')),
  position_at timestamptz not null,
  position_order uuid not null,
  updated_at timestamptz not null default now()
);
-- the cursor the incremental runs kept so far
insert into reconciliation_cursors (name, position_at, position_order)
select 'provider_first', r.provider_checked_until, r.provider_checked_until_order
  from reconciliation_runs r
 where r.provider_checked_until is not null and r.provider_checked_until_order is not null
   and r.error is null and r.mode = 'incremental'
 order by r.id desc limit 1;

-- Final orders the provider could not answer while later ones were answered: asked again with a
-- backoff, until RECONCILE_PROVIDER_UNKNOWN_MAX tries make them a break.
create table reconciliation_provider_retries (
  order_id uuid primary key,
  transaction_id uuid not null,
  attempts int not null constraint reconciliation_provider_retries_attempts_positive check (attempts > 0),
  first_asked_at timestamptz not null,
  next_at timestamptz not null
);
create index reconciliation_provider_retries_next_idx on reconciliation_provider_retries (next_at);
