// The admin API of webhook endpoints: the signing secret is shown once, never listed; bad input is
// refused with 40001 and writes nothing; a URL registered twice is a conflict; deleting an endpoint
// cancels what waits for it; every change is audited without the secret; only admins may call it.
import test from 'ava';
import pg from 'pg';
import { call } from './helpers/http.ts';
import { startTestSystem, type TestSystem } from './helpers/system.ts';

let system: TestSystem;
let balance: pg.Pool;

test.before(async () => {
  system = await startTestSystem();
  balance = new pg.Pool({ connectionString: system.db.balanceUrl, max: 2 });
});

test.after.always(async () => {
  await balance?.end();
  await system?.stop();
});

const admin = (method: string, path: string, body?: unknown) => call(system.url, method, path, { token: system.adminToken, body });

test.serial('when an endpoint is registered, then its secret is in that reply only, and the audit trail never holds it', async (t) => {
  const created = await admin('POST', '/admin/webhook-endpoints', { url: 'https://hooks.example.com/a', events: ['withdraw.success'] });
  t.is(created.status, 201, created.text);
  const { endpointId, secret } = created.body.data;
  t.regex(secret, /^whsec_[A-Za-z0-9_-]{43}$/);
  t.is(created.headers.get('cache-control'), 'no-store');
  t.like(created.body.data, { url: 'https://hooks.example.com/a', events: ['withdraw.success'], status: 'active' });
  for (const path of [
    '/admin/webhook-endpoints',
    `/admin/webhook-endpoints/${endpointId}`,
    '/admin/webhook-endpoints?includeDeleted=true',
  ]) {
    const read = await admin('GET', path);
    t.is(read.status, 200, read.text);
    t.false(read.text.includes(secret), `${path} shows the secret`);
    t.false(read.text.includes('"secret"'), path);
  }
  const { rows } = await balance.query<{ text: string }>('select details::text as text from admin_audit_log');
  t.true(rows.length > 0);
  t.false(
    rows.some((r) => r.text.includes(secret)),
    'the audit trail holds no secret',
  );
  const again = await admin('POST', '/admin/webhook-endpoints', { url: 'https://hooks.example.com/a', events: ['withdraw.failed'] });
  t.is(again.status, 409, again.text);
  t.is(again.body.code, 40902);
  t.is(again.body.data.endpointId, endpointId);
  const deleted = await admin('DELETE', `/admin/webhook-endpoints/${endpointId}`);
  t.is(deleted.status, 200);
  t.is(deleted.body.data.status, 'deleted');
  t.is((await admin('DELETE', `/admin/webhook-endpoints/${endpointId}`)).body.msg, 'already deleted');
  const reused = await admin('POST', '/admin/webhook-endpoints', { url: 'https://hooks.example.com/a', events: ['withdraw.failed'] });
  t.is(reused.status, 201, 'a deleted endpoint’s URL can be registered again');
  t.not(reused.body.data.secret, secret);
});

test.serial('when the registration is bad, then 400 40001 naming the field, and nothing is written', async (t) => {
  const before = await balance.query<{ n: number }>('select count(*)::int as n from webhook_endpoints');
  const bad: Array<[unknown, RegExp]> = [
    [{}, /^url: /],
    [{ url: 'ftp://example.com/x', events: ['withdraw.success'] }, /^url: /],
    [{ url: 'not a url', events: ['withdraw.success'] }, /^url: /],
    [{ url: 'https://user:pass@example.com/x', events: ['withdraw.success'] }, /^url: .*credentials/],
    [{ url: `https://example.com/${'x'.repeat(2100)}`, events: ['withdraw.success'] }, /^url: /],
    [{ url: 'https://example.com/x' }, /^events: /],
    [{ url: 'https://example.com/x', events: [] }, /^events: /],
    [{ url: 'https://example.com/x', events: ['withdraw.created'] }, /^events\.0: /],
    [{ url: 'https://example.com/x', events: ['withdraw.success', 'withdraw.success'] }, /^events: .*repeat/],
  ];
  for (const [body, msg] of bad) {
    const reply = await admin('POST', '/admin/webhook-endpoints', body);
    t.is(reply.status, 400, `${JSON.stringify(body).slice(0, 80)}: ${reply.text}`);
    t.is(reply.body.code, 40001);
    t.regex(reply.body.msg, msg);
  }
  const after = await balance.query<{ n: number }>('select count(*)::int as n from webhook_endpoints');
  t.is(after.rows[0]!.n, before.rows[0]!.n);
  for (const [method, path] of [
    ['GET', '/admin/webhook-endpoints/not-a-uuid'],
    ['DELETE', '/admin/webhook-endpoints/01900000-0000-7000-8000-000000000000'],
    ['POST', '/admin/webhook-endpoints/01900000-0000-7000-8000-000000000000/enable'],
    ['POST', '/admin/webhook-deliveries/99999999999999999999/retry'],
    ['POST', '/admin/webhook-deliveries/12345/retry'],
  ] as const) {
    const reply = await admin(method, path);
    t.is(reply.status, 404, `${method} ${path}: ${reply.text}`);
  }
  for (const query of ['status=lost', 'endpointId=x', 'limit=0', 'cursor=zzz', 'foo=1']) {
    const reply = await admin('GET', `/admin/webhook-deliveries?${query}`);
    t.is(reply.status, 400, `${query}: ${reply.text}`);
  }
});

test.serial('when a user token or no token calls the webhook API, then 401 and nothing is written', async (t) => {
  const user = await system.userToken('hook-user');
  const before = await balance.query<{ n: number }>('select count(*)::int as n from webhook_endpoints');
  for (const token of [user, undefined]) {
    const reply = await call(system.url, 'POST', '/admin/webhook-endpoints', {
      token,
      body: { url: 'https://example.com/u', events: ['withdraw.success'] },
    });
    t.is(reply.status, 401, reply.text);
    t.is((await call(system.url, 'GET', '/admin/webhook-deliveries', { token })).status, 401);
  }
  const after = await balance.query<{ n: number }>('select count(*)::int as n from webhook_endpoints');
  t.is(after.rows[0]!.n, before.rows[0]!.n);
});
