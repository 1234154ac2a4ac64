-- Up Migration
-- Indexes the operations console reads through.

-- The throughput chart counts final transitions per minute over the last hour: the status history
-- is append-only, so a BRIN index on its time is a few pages, costs next to nothing on the write
-- path, and narrows the read to the recent end of the table (ranges not yet summarized, the newest,
-- are read whole: that is the window the chart wants).
create index withdraw_status_history_created_brin on withdraw_status_history using brin(created_at);

-- Resolved breaks, newest first (open ones have reconciliation_breaks_open_idx).
create index reconciliation_breaks_resolved_idx on reconciliation_breaks (first_seen_at, id) where resolved_at is not null;
