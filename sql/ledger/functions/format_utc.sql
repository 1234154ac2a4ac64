-- An instant as ISO 8601 in UTC with milliseconds, the form of JavaScript's toISOString().
create or replace function format_utc(p_at timestamptz) returns text
language sql stable strict parallel safe as $$
  select to_char(p_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;
