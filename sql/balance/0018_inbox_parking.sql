-- Up Migration
-- One callback that cannot be applied no longer holds back the others. When a batch fails, the
-- worker applies its rows one by one; a row that fails records its error (last_error, attempts),
-- waits a backoff (retry_at) and is tried again; after INBOX_PARK_AFTER_ATTEMPTS it is parked
-- (parked_at): out of the queue, kept, and a reconciliation break (inbox_parked) an operator sees.
alter table gateway_inbox add column retry_at timestamptz, add column parked_at timestamptz;
-- the queue: rows neither applied nor parked (those waiting for a retry are filtered by retry_at)
drop index gateway_inbox_pending_idx;
create index gateway_inbox_pending_idx on gateway_inbox (id) where processed_at is null and parked_at is null;
