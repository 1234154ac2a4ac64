-- How long outgoing events and their deliveries are kept (webhook_prune), and so how far back the
-- fan-out looks for earlier changes of an order (webhook_enqueue_events): an event pruned is never
-- made again. Longer than any delivery is retried (72 hours).
create or replace function webhook_retention() returns interval
language sql immutable parallel safe as $$
  select interval '30 days'
$$;
