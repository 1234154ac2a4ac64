-- Makes sure an endpoint's delivery job (webhook__deliver, one job key per endpoint) runs no later
-- than p_run_at: an earlier scheduled run is kept, a later one is brought forward. A running job's
-- key is handed to a new job by graphile-worker, so a wake during a run is never lost.
create or replace function webhook_wake(p_endpoint_id uuid, p_run_at timestamptz) returns void
language plpgsql as $$
declare
  v_run_at timestamptz;
begin
  select j.run_at into v_run_at
    from graphile_worker.add_job('webhook__deliver', json_build_object('endpointId', p_endpoint_id),
      run_at := p_run_at, max_attempts := 25, job_key := 'webhook-deliver:' || p_endpoint_id,
      job_key_mode := 'preserve_run_at') j;
  if v_run_at > p_run_at then
    perform graphile_worker.add_job('webhook__deliver', json_build_object('endpointId', p_endpoint_id),
      run_at := p_run_at, max_attempts := 25, job_key := 'webhook-deliver:' || p_endpoint_id, job_key_mode := 'replace');
  end if;
end $$;
