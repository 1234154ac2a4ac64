-- The statuses in which an order still holds its reservation (I2): those with a way out in
-- withdraw_transitions. The one SQL definition, for queries, reports and plpgsql; TypeScript's is
-- OPEN_STATUSES (app/withdraw/withdrawStateMachine.ts), and a test checks that both agree with the
-- transition table. Immutable, so the planner folds it into a constant and a partial index whose
-- predicate lists the same statuses still applies.
create or replace function withdraw_open_statuses() returns text []
language sql immutable parallel safe as $$
  select array['init', 'processing', 'manual']
$$;
