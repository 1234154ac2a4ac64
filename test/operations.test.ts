import test from 'ava';
import { sql } from 'slonik';
import { z } from 'zod';
import { call } from './helpers/http.ts';
import { startTestSystem, type TestSystem } from './helpers/system.ts';

let system: TestSystem;
test.before(async () => {
  system = await startTestSystem();
});
test.after.always(async () => {
  await system?.stop();
});

test('when the process is up and migrated, then healthz and readyz answer 200 in the envelope', async (t) => {
  const health = await call(system.url, 'GET', '/healthz');
  t.is(health.status, 200);
  t.is(health.body.code, 0);
  const ready = await call(system.url, 'GET', '/readyz');
  t.is(ready.status, 200);
  t.deepEqual(ready.body.data, { balance: 'ok', ledger: 'ok' });
});

test.serial('when a migration is missing, then readyz answers 503 naming the database', async (t) => {
  const client = await system.db.client('ledger');
  const last = await client.query<{ name: string }>('select name from schema_migrations order by id desc limit 1');
  const name = last.rows[0]!.name;
  await client.query('delete from schema_migrations where name = $1', [name]);
  try {
    const ready = await call(system.url, 'GET', '/readyz');
    t.is(ready.status, 503);
    t.is(ready.body.code, 50301);
    t.is(ready.body.data.ledger, 'migrations pending');
    t.is(ready.body.data.balance, 'ok');
  } finally {
    await client.query('insert into schema_migrations (name, run_on) values ($1, now())', [name]);
  }
});

test('when metrics are scraped, then the operational gauges are present', async (t) => {
  const reply = await call(system.url, 'GET', '/metrics');
  t.is(reply.status, 200);
  for (const name of ['withdraw_outbox_unrelayed', 'withdraw_orders_open', 'withdraw_callbacks_pending', 'http_request_duration_seconds']) {
    t.true(reply.text.includes(name), name);
  }
  t.regex(reply.text, /withdraw_outbox_unrelayed\{[^}]*database="ledger"[^}]*\} \d+/);
});

test('when the OpenAPI document is requested, then it describes the contract endpoints', async (t) => {
  const reply = await call(system.url, 'GET', '/openapi.json');
  t.is(reply.status, 200);
  for (const path of ['/withdraw', '/withdraw/{withdrawOrderId}', '/withdraw/submit', '/withdraw/notify', '/admin/accounts']) {
    t.truthy(reply.body.paths[path], path);
  }
  t.truthy(reply.body.components.schemas.WithdrawRequest);
});

test('when the dashboard API is called without the admin token, then 401; the console page goes to sign-in', async (t) => {
  for (const path of ['/admin/api/overview', '/admin/api/jobs', '/admin/api/breaks']) {
    const reply = await call(system.url, 'GET', path);
    t.is(reply.status, 401, path);
    t.is(reply.body.code, 40101);
  }
  const userToken = await system.userToken('mallory');
  t.is((await call(system.url, 'GET', '/admin/api/overview', { token: userToken })).status, 401);
  const page = await fetch(`${system.url}/admin/`, { redirect: 'manual' });
  t.is(page.status, 303);
  t.is(page.headers.get('location'), '/admin/login');
  const login = await fetch(`${system.url}/admin/login`);
  t.is(login.status, 200);
  t.regex(await login.text(), /<title>Withdraw system: sign in/);
});

test.serial('when a job has failed permanently, then the dashboard lists it and a retry resets its attempts', async (t) => {
  const db = system.db.databases.balance;
  const jobId = await db.oneFirst(sql.type(z.object({ id: z.bigint() }))`
    select id from graphile_worker.add_job('no_such_task', '{}'::json, max_attempts := 1)`);
  await db.query(sql.unsafe`update graphile_worker._private_jobs set attempts = 1, last_error = 'boom' where id = ${jobId}`);
  const failed = await call(system.url, 'GET', '/admin/api/jobs?state=failed', { token: system.adminToken });
  t.is(failed.status, 200);
  const listed = failed.body.data.jobs.find((job: { id: string }) => job.id === jobId.toString());
  t.like(listed, { task: 'no_such_task', attempts: 1, maxAttempts: 1, lastError: 'boom' });
  const overview = await call(system.url, 'GET', '/admin/api/overview', { token: system.adminToken });
  t.like(
    overview.body.data.jobs.find((row: { task: string }) => row.task === 'no_such_task'),
    { failed: 1 },
  );

  const retried = await call(system.url, 'POST', '/admin/api/jobs/retry', {
    token: system.adminToken,
    body: { jobIds: [jobId.toString()] },
  });
  t.is(retried.status, 200);
  t.is(retried.body.data.retried, 1);
  const attempts = await db.oneFirst(sql.type(z.object({ attempts: z.number() }))`
    select attempts from graphile_worker.jobs where id = ${jobId}`);
  t.is(attempts, 0);
  const bad = await call(system.url, 'POST', '/admin/api/jobs/retry', { token: system.adminToken, body: { jobIds: ['x'] } });
  t.is(bad.status, 400);
});
