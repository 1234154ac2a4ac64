-- Records a reconciliation finding: one open break per (category, subject); seeing it again bumps
-- last_seen_at and seen_count and keeps the latest expected/actual/details.
create or replace function reconciliation_record_break(
  p_category text, p_subject text, p_order_id uuid, p_account_id uuid, p_transaction_id uuid,
  p_currency text, p_expected text, p_actual text, p_details jsonb
) returns bigint language plpgsql as $$
declare
  v_id bigint;
begin
  insert into reconciliation_breaks (category, subject, order_id, account_id, transaction_id, currency, expected, actual, details)
  values (p_category, p_subject, p_order_id, p_account_id, p_transaction_id, p_currency, p_expected, p_actual, coalesce(p_details, '{}'))
  on conflict (category, subject) where resolved_at is null
  do update set last_seen_at = now(), seen_count = reconciliation_breaks.seen_count + 1,
                expected = excluded.expected, actual = excluded.actual, details = excluded.details
  returning id into v_id;
  return v_id;
end $$;
