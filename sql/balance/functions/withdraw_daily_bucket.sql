-- The 15-minute bucket of the daily-withdrawals rollup an instant belongs to: the quarter hour of
-- UTC at or before it (an infinite instant is its own bucket).
create or replace function withdraw_daily_bucket(p_at timestamptz) returns timestamptz
language sql immutable strict parallel safe as $$
  select case when isfinite(p_at) then date_bin('15 minutes', p_at, timestamptz '2000-01-01 00:00:00+00') else p_at end
$$;
