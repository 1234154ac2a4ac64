-- Up Migration
-- Applied provider callbacks are pruned after GATEWAY_INBOX_RETENTION_HOURS (jobs/pruning.ts):
-- oldest applied first, through this index, which holds only applied rows.
create index gateway_inbox_processed_idx on gateway_inbox (processed_at) where processed_at is not null;
