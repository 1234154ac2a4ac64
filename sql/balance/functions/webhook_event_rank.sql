-- The place of an event type among the events of one order: deliveries of one order to one endpoint
-- go out in this order (a state is entered at most once; a reversal comes after success).
create or replace function webhook_event_rank(p_type text) returns smallint
language sql immutable strict parallel safe as $$
  select case p_type
    when 'withdraw.processing' then 1 when 'withdraw.manual' then 2 when 'withdraw.success' then 3
    when 'withdraw.failed' then 3 when 'withdraw.reversed' then 4 end::smallint
$$;
