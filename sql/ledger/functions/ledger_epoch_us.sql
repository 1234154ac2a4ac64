-- An instant as integer microseconds since the Unix epoch (the hash input's form of created_at).
create or replace function ledger_epoch_us(p_at timestamptz) returns bigint language sql immutable as $$
  select (extract(epoch from p_at) * 1000000)::bigint
$$;
