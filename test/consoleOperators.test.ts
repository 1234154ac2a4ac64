// Named operators and their console sessions: accounts made with the admin token, argon2id
// passwords, sign-in and lockout, cookies, CSRF, idle and absolute expiry, role checks, and the
// audit trail naming the operator account that acted.
import { createHash } from 'node:crypto';
import test from 'ava';
import { sql } from 'slonik';
import { z } from 'zod';
import { cookieOf, createOperator, signIn, TEST_PASSWORD } from './helpers/consoleClient.ts';
import { call } from './helpers/http.ts';
import { startTestSystem, type TestSystem } from './helpers/system.ts';

const FAILURES_MAX = 3;
let system: TestSystem;
const ids: Record<string, string> = {};

test.before(async () => {
  system = await startTestSystem({
    env: { CONSOLE_LOGIN_FAILURES_MAX: String(FAILURES_MAX), ADMIN_TOKENS: 'robot:robot-token-0123456789' },
  });
  for (const [login, role] of [
    ['vera', 'viewer'],
    ['otto', 'operator'],
    ['april', 'approver'],
    ['ada', 'admin'],
  ] as const) {
    ids[login] = await createOperator(system.url, system.adminToken, { login, role, displayName: `${login} (${role})` });
  }
});
test.after.always(async () => {
  await system?.stop();
});

const AuditRow = z.object({ operator: z.string(), operatorId: z.bigint().nullable(), action: z.string(), details: z.record(z.unknown()) });
const auditOf = (subject: string) =>
  system.db.databases.balance.any(sql.type(AuditRow)`
    select operator, operator_id as "operatorId", action, details from admin_audit_log where subject = ${subject} order by id`);

test('when the admin token creates an operator, then only an argon2id hash is stored and the audit says the token made it', async (t) => {
  const id = await createOperator(system.url, system.adminToken, { login: 'newbie', role: 'viewer' });
  const row = await system.db.databases.balance.one(sql.type(z.object({ passwordHash: z.string(), createdBy: z.string() }))`
    select password_hash as "passwordHash", created_by as "createdBy" from operators where id = ${id}`);
  t.regex(row.passwordHash, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
  t.false(row.passwordHash.includes(TEST_PASSWORD));
  t.is(row.createdBy, 'admin');
  const audit = await auditOf(`operator:${id}`);
  t.like(audit[0], { operator: 'admin', operatorId: null, action: 'operator.create', details: { login: 'newbie', role: 'viewer' } });
  t.false(JSON.stringify(audit).includes(TEST_PASSWORD), 'the password is in no audit row');
});

test('when an operator is created with a bad login, a reserved name, a weak password or a taken login, then it is refused', async (t) => {
  const create = (body: Record<string, unknown>) =>
    call(system.url, 'POST', '/admin/operators', {
      token: system.adminToken,
      body: { login: 'fresh', displayName: 'Fresh', role: 'viewer', password: TEST_PASSWORD, ...body },
    });
  for (const [body, status, msg] of [
    [{ login: 'Has Space' }, 400, /^login:/],
    [{ login: 'admin' }, 400, /reserved/],
    [{ login: 'robot' }, 400, /reserved/],
    [{ password: 'short' }, 400, /^password: must be at least 12/],
    [{ password: 'aaaaaaaaaaaaaaaa' }, 400, /^password: must use at least 5/],
    [{ password: 'fresh-and-long-password' }, 400, /^password: must not contain the login/],
    [{ role: 'root' }, 400, /^role:/],
    [{ login: 'vera' }, 409, /exists/],
  ] as const) {
    const reply = await create(body);
    t.is(reply.status, status, JSON.stringify(body));
    t.regex(reply.body.msg, msg);
  }
  t.is((await call(system.url, 'POST', '/admin/operators', { body: { login: 'x' } })).status, 401, 'no token, no operator');
  const user = await system.userToken('mallory');
  t.is((await call(system.url, 'POST', '/admin/operators', { token: user, body: {} })).status, 401);
});

test('when an operator signs in, then the session cookie is __Host-, HttpOnly, Secure and SameSite=Strict, and only its hash is stored', async (t) => {
  const reply = await call(system.url, 'POST', '/admin/console/api/login', { body: { login: 'vera', password: TEST_PASSWORD } });
  t.is(reply.status, 200, reply.text);
  const header = reply.headers.get('set-cookie') ?? '';
  t.regex(header, /^__Host-withdraw_console=[A-Za-z0-9_-]{43}; Path=\/; Max-Age=43200; HttpOnly; Secure; SameSite=Strict$/);
  t.is(reply.headers.get('cache-control'), 'no-store');
  const sessionId = cookieOf(reply)!.split('=')[1]!;
  const stored = await system.db.databases.balance.any(sql.type(z.object({ idHash: z.instanceof(Buffer) }))`
    select id_hash as "idHash" from operator_sessions where operator_id = ${ids.vera!}`);
  t.true(stored.some((row) => row.idHash.equals(createHash('sha256').update(sessionId).digest())));
  const client = await signIn(system.url, 'vera');
  const session = await client.call('GET', '/admin/console/api/session');
  t.is(session.status, 200);
  t.like(session.body.data, { operator: { login: 'vera', role: 'viewer', displayName: 'vera (viewer)' }, csrfToken: client.csrfToken });
  const logins = (await auditOf(`operator:${ids.vera}`)).filter((row) => row.action === 'operator.login');
  t.true(logins.length >= 2 && logins.every((row) => row.operator === 'vera' && row.operatorId === BigInt(ids.vera!)));
});

test('when a console endpoint is called without a session, then 401 with no data, whatever else the request carries', async (t) => {
  const variants: Array<Record<string, string>> = [
    {},
    { authorization: `Bearer ${system.adminToken}` },
    { cookie: '__Host-withdraw_console=forged' },
  ];
  for (const headers of variants) {
    const reply = await call(system.url, 'GET', '/admin/console/api/session', { headers });
    t.is(reply.status, 401, JSON.stringify(headers));
    t.deepEqual(reply.body, { code: 40101, msg: reply.body.msg, data: null });
  }
  const forged = `__Host-withdraw_console=${'A'.repeat(43)}`;
  const reply = await call(system.url, 'GET', '/admin/console/api/operators', { headers: { cookie: forged } });
  t.is(reply.status, 401);
  t.regex(reply.headers.get('set-cookie') ?? '', /Max-Age=0/, 'a dead session cookie is cleared');
});

test.serial('when a sign-in fails, then the reply is the same for every cause, and failures in a row lock the account', async (t) => {
  await createOperator(system.url, system.adminToken, { login: 'lock-me', role: 'operator' });
  const attempt = (login: string, password: string) => call(system.url, 'POST', '/admin/console/api/login', { body: { login, password } });
  const unknown = await attempt('nobody-here', TEST_PASSWORD);
  const wrong = await attempt('lock-me', 'not the password at all');
  t.is(unknown.status, 401);
  t.is(wrong.status, 401);
  t.is(unknown.body.msg, wrong.body.msg);
  t.is(unknown.headers.get('set-cookie'), null);
  for (let i = 1; i < FAILURES_MAX; i += 1) t.is((await attempt('lock-me', `wrong guess ${i}`)).status, 401);
  const locked = await attempt('lock-me', TEST_PASSWORD);
  t.is(locked.status, 401, 'locked: even the right password is refused');
  t.is(locked.body.msg, unknown.body.msg);
  const id = await system.db.databases.balance.oneFirst(
    sql.type(z.object({ id: z.bigint() }))`select id from operators where login = 'lock-me'`,
  );
  const failures = (await auditOf(`operator:${id}`)).filter((row) => row.action === 'operator.login_failed');
  t.is(failures.length, FAILURES_MAX + 1);
  t.true(
    failures.every((row) => row.operator === 'anonymous' && row.operatorId === null),
    'a failed sign-in is nobody yet',
  );
  t.like(failures.at(-1), { details: { login: 'lock-me', reason: 'locked or disabled' } });
  // an admin unlocks it
  const ada = await signIn(system.url, 'ada');
  const unlocked = await ada.call('PATCH', `/admin/console/api/operators/${id}`, { body: { unlock: true } });
  t.is(unlocked.status, 200, unlocked.text);
  t.is((await attempt('lock-me', TEST_PASSWORD)).status, 200);
});

test('when an unsafe console request lacks the CSRF header, has a wrong one or comes from another origin, then 403 and nothing changes', async (t) => {
  const client = await signIn(system.url, 'vera');
  const variants: Array<{ csrf?: boolean; headers?: Record<string, string> }> = [
    { csrf: false },
    { csrf: false, headers: { 'x-csrf-token': 'x'.repeat(43) } },
    { headers: { origin: 'https://evil.example' } },
  ];
  for (const options of variants) {
    const reply = await client.call('POST', '/admin/console/api/logout', options);
    t.is(reply.status, 403, JSON.stringify(options));
    t.is(reply.body.code, 40301);
  }
  t.is((await client.call('GET', '/admin/console/api/session')).status, 200, 'the session is still alive');
  const crossSignIn = await call(system.url, 'POST', '/admin/console/api/login', {
    headers: { origin: 'https://evil.example' },
    body: { login: 'vera', password: TEST_PASSWORD },
  });
  t.is(crossSignIn.status, 403, 'no sign-in from another origin (login CSRF)');
  const out = await client.call('POST', '/admin/console/api/logout');
  t.is(out.status, 200);
  t.regex(out.headers.get('set-cookie') ?? '', /Max-Age=0/);
  t.is((await client.call('GET', '/admin/console/api/session')).status, 401, 'signed out: the cookie opens nothing');
});

test.serial(
  'when a session passes its idle or absolute expiry, then it opens nothing; background refreshes do not keep it alive',
  async (t) => {
    const db = system.db.databases.balance;
    const idle = await signIn(system.url, 'otto');
    const hashOf = (cookie: string) => createHash('sha256').update(cookie.split('=')[1]!).digest();
    const lastSeen = (cookie: string) =>
      db.oneFirst(
        sql.type(
          z.object({ at: z.number() }),
        )`select last_seen_at as at from operator_sessions where id_hash = ${sql.binary(hashOf(cookie))}`,
      );
    await db.query(sql.unsafe`
    update operator_sessions set last_seen_at = now() - interval '10 minutes' where id_hash = ${sql.binary(hashOf(idle.cookie))}`);
    const before = await lastSeen(idle.cookie);
    t.is((await idle.call('GET', '/admin/console/api/session', { headers: { 'x-console-refresh': '1' } })).status, 200);
    t.is(await lastSeen(idle.cookie), before, 'a background refresh is not the operator acting');
    t.is((await idle.call('GET', '/admin/console/api/session')).status, 200);
    t.true((await lastSeen(idle.cookie)) > before, "the operator's own request restarts the idle clock");
    await db.query(sql.unsafe`
    update operator_sessions set last_seen_at = now() - interval '31 minutes' where id_hash = ${sql.binary(hashOf(idle.cookie))}`);
    t.is((await idle.call('GET', '/admin/console/api/session')).status, 401, 'idle for longer than CONSOLE_SESSION_IDLE_MINUTES');

    const old = await signIn(system.url, 'otto');
    await db.query(sql.unsafe`
    update operator_sessions set expires_at = now() - interval '1 second' where id_hash = ${sql.binary(hashOf(old.cookie))}`);
    t.is((await old.call('GET', '/admin/console/api/session')).status, 401, 'past its absolute expiry');
  },
);

test('when operators of each role manage operators, then only the admin role may, and not on themselves', async (t) => {
  for (const login of ['vera', 'otto', 'april']) {
    const client = await signIn(system.url, login);
    const list = await client.call('GET', '/admin/console/api/operators');
    t.is(list.status, 403, login);
    t.is(list.body.data, null);
    const create = await client.call('POST', '/admin/console/api/operators', {
      body: { login: `by-${login}`, displayName: 'x', role: 'admin', password: TEST_PASSWORD },
    });
    t.is(create.status, 403, login);
    t.is((await client.call('PATCH', `/admin/console/api/operators/${ids[login]}`, { body: { role: 'admin' } })).status, 403, login);
  }
  const ada = await signIn(system.url, 'ada');
  t.is((await ada.call('GET', '/admin/console/api/operators')).status, 200);
  const self = await ada.call('PATCH', `/admin/console/api/operators/${ids.ada}`, { body: { disabled: true } });
  t.is(self.status, 422);
  t.is(
    (await ada.call('POST', `/admin/console/api/operators/${ids.ada}/password`, { body: { password: 'a new long password' } })).status,
    422,
  );
  const made = await ada.call('POST', '/admin/console/api/operators', {
    body: { login: 'made-by-ada', displayName: 'Made', role: 'approver', password: TEST_PASSWORD },
  });
  t.is(made.status, 201, made.text);
  t.like((await auditOf(`operator:${made.body.data.operatorId}`))[0], {
    operator: 'ada',
    operatorId: BigInt(ids.ada!),
    action: 'operator.create',
  });
});

test.serial('when an admin disables an operator or sets their password, then their sessions end at once', async (t) => {
  const id = await createOperator(system.url, system.adminToken, { login: 'leaver', role: 'operator' });
  const leaver = await signIn(system.url, 'leaver');
  const ada = await signIn(system.url, 'ada');
  const reset = await ada.call('POST', `/admin/console/api/operators/${id}/password`, { body: { password: 'a brand new passphrase' } });
  t.is(reset.status, 200, reset.text);
  t.is(reset.body.data.sessionsEnded, 1);
  t.is((await leaver.call('GET', '/admin/console/api/session')).status, 401);
  await t.throwsAsync(signIn(system.url, 'leaver'), { message: /401/ }, 'the old password no longer works');
  const again = await signIn(system.url, 'leaver', 'a brand new passphrase');
  const disabled = await ada.call('PATCH', `/admin/console/api/operators/${id}`, { body: { disabled: true } });
  t.is(disabled.status, 200);
  t.like(disabled.body.data, { disabled: true, activeSessions: 0 });
  t.is((await again.call('GET', '/admin/console/api/session')).status, 401);
  await t.throwsAsync(signIn(system.url, 'leaver', 'a brand new passphrase'), { message: /401/ });
  const audit = await auditOf(`operator:${id}`);
  t.deepEqual(
    audit.filter((row) => row.operator === 'ada').map((row) => row.action),
    ['operator.password_reset', 'operator.update'],
  );
});

test('when an operator changes their own password, then the current one is required and their other sessions end', async (t) => {
  await createOperator(system.url, system.adminToken, { login: 'changer', role: 'viewer' });
  const first = await signIn(system.url, 'changer');
  const second = await signIn(system.url, 'changer');
  const wrong = await first.call('POST', '/admin/console/api/session/password', {
    body: { currentPassword: 'not it at all', newPassword: 'my next passphrase' },
  });
  t.is(wrong.status, 403);
  const weak = await first.call('POST', '/admin/console/api/session/password', {
    body: { currentPassword: TEST_PASSWORD, newPassword: 'short' },
  });
  t.is(weak.status, 400);
  const changed = await first.call('POST', '/admin/console/api/session/password', {
    body: { currentPassword: TEST_PASSWORD, newPassword: 'my next passphrase' },
  });
  t.is(changed.status, 200, changed.text);
  t.is(changed.body.data.otherSessionsEnded, 1);
  t.is((await first.call('GET', '/admin/console/api/session')).status, 200, 'this session stays');
  t.is((await second.call('GET', '/admin/console/api/session')).status, 401, 'the other one ends');
});

test('when the admin API is called with the shared token and an X-Operator header, then the audit names the token, not the header', async (t) => {
  const accountId = await system.fundedAccount('xop-user', '10.00');
  const reply = await call(system.url, 'POST', `/admin/accounts/${accountId}/status`, {
    token: system.adminToken,
    headers: { 'x-operator': 'somebody-else' },
    body: { status: 'frozen' },
  });
  t.is(reply.status, 200, reply.text);
  const named = await call(system.url, 'POST', `/admin/accounts/${accountId}/status`, {
    token: 'robot-token-0123456789',
    headers: { 'x-operator': 'somebody-else' },
    body: { status: 'active' },
  });
  t.is(named.status, 200, named.text);
  const audit = (await auditOf(`account:${accountId}`)).filter((row) => row.action === 'account.status');
  t.deepEqual(
    audit.map((row) => [row.operator, row.operatorId]),
    [
      ['admin', null],
      ['robot', null],
    ],
  );
});
