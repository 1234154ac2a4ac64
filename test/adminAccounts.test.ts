// The admin account API (create, read, credit, status) and GET /withdraw/{id}.
import test, { type ExecutionContext } from 'ava';
import pg from 'pg';
import { v4 as uuidv4, v7 as uuidv7 } from 'uuid';
import { eventually } from './helpers/asyncChecks.ts';
import { accountNumbers } from './helpers/balanceChecks.ts';
import { call, type JsonReply } from './helpers/http.ts';
import { startTestSystem, TEST_SECRETS, type TestSystem } from './helpers/system.ts';

let system: TestSystem;
let balance: pg.Pool;

test.before(async () => {
  system = await startTestSystem();
  balance = new pg.Pool({ connectionString: system.db.balanceUrl, max: 4 });
});

test.after.always(async () => {
  await balance?.end();
  await system?.stop();
});

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

function admin(method: string, path: string, body?: unknown, token = system.adminToken): Promise<JsonReply> {
  return call(system.url, method, path, { token, ...(body === undefined ? {} : { body }) });
}

async function createAccount(userId: string, currency = 'USD'): Promise<string> {
  const reply = await admin('POST', '/admin/accounts', { userId, currency });
  if (reply.status !== 201) throw new Error(reply.text);
  return reply.body.data.accountId;
}

function credit(accountId: string, amount: unknown, transactionId: string, token?: string): Promise<JsonReply> {
  return admin('POST', `/admin/accounts/${accountId}/credits`, { amount, transactionId }, token);
}

function isRejection(t: ExecutionContext, reply: JsonReply, status: number, code: number, msg?: RegExp, label = ''): void {
  const where = `${label} ${reply.status} ${reply.text}`;
  t.is(reply.status, status, where);
  t.deepEqual(reply.body, { code, msg: reply.body?.msg, data: null }, where);
  t.is(typeof reply.body?.msg, 'string', where);
  if (msg) t.regex(reply.body.msg, msg, where);
}

async function adminTableCounts() {
  const { rows } = await balance.query<{ accounts: number; credits: number; outbox: number; statuses: string }>(
    `select (select count(*)::int from accounts) as accounts, (select count(*)::int from credits) as credits,
            (select count(*)::int from outbox) as outbox,
            (select coalesce(string_agg(id::text || status, ',' order by id), '') from accounts) as statuses`,
  );
  return rows[0]!;
}

async function creditRows(transactionId: string) {
  const { rows } = await balance.query<{ credits: number; outbox: number }>(
    `select (select count(*)::int from credits where transaction_id = $1) as credits,
            (select count(*)::int from outbox where topic = 'account.credited' and transaction_id = $1) as outbox`,
    [transactionId],
  );
  return rows[0]!;
}

test.serial('when an account is created, then 201 with its id and zero balances as decimal strings', async (t) => {
  const reply = await admin('POST', '/admin/accounts', { userId: 'adm-create', currency: 'USD' });
  t.is(reply.status, 201, reply.text);
  t.is(reply.body.code, 0);
  t.is(typeof reply.body.msg, 'string');
  t.regex(reply.body.data.accountId, UUID);
  t.like(reply.body.data, {
    userId: 'adm-create',
    currency: 'USD',
    status: 'active',
    balance: '0.00',
    available: '0.00',
    reserved: '0.00',
  });
  t.deepEqual(await accountNumbers(balance, reply.body.data.accountId), { balance: 0n, available: 0n, reserved: 0n, status: 'active' });

  const yen = await admin('POST', '/admin/accounts', { userId: 'adm-create', currency: 'JPY' });
  t.is(yen.status, 201, yen.text);
  t.like(yen.body.data, { currency: 'JPY', balance: '0', available: '0', reserved: '0' });

  const read = await admin('GET', `/admin/accounts/${reply.body.data.accountId}`);
  t.is(read.status, 200, read.text);
  t.deepEqual(read.body, { code: 0, msg: read.body.msg, data: reply.body.data });
  const upper = await admin('GET', `/admin/accounts/${reply.body.data.accountId.toUpperCase()}`);
  t.is(upper.status, 200);
  t.is(upper.body.data.accountId, reply.body.data.accountId);
});

test.serial('when an account is read that does not exist or with a malformed id, then 404 40401', async (t) => {
  for (const id of [uuidv7(), uuidv4(), 'not-a-uuid', '1', "'or'1'='1", `${uuidv7()}x`]) {
    isRejection(t, await admin('GET', `/admin/accounts/${encodeURIComponent(id)}`), 404, 40401, undefined, id);
  }
});

test.serial('when the create request is invalid, then 400 40001 naming the field, and nothing is written', async (t) => {
  const before = await adminTableCounts();
  const cases: Array<[unknown, RegExp]> = [
    [{ userId: 'adm-x', currency: 'usd' }, /currency/],
    [{ userId: 'adm-x', currency: 'XXX' }, /currency/],
    [{ userId: 'adm-x' }, /currency/],
    [{ userId: 'adm-x', currency: 1 }, /currency/],
    [{ userId: '', currency: 'USD' }, /userId/],
    [{ userId: 'bad user', currency: 'USD' }, /userId/],
    [{ userId: 'a'.repeat(129), currency: 'USD' }, /userId/],
    [{ userId: 42, currency: 'USD' }, /userId/],
    [{ currency: 'USD' }, /userId/],
  ];
  for (const [body, field] of cases) {
    isRejection(t, await admin('POST', '/admin/accounts', body), 400, 40001, field, JSON.stringify(body));
  }
  t.deepEqual(await adminTableCounts(), before);
});

test.serial(
  'when a credit is repeated with the same transactionId, then it is replayed with Idempotent-Replayed and counted once',
  async (t) => {
    const accountId = await createAccount('adm-credit');
    const transactionId = uuidv4();
    const first = await credit(accountId, '25.50', transactionId);
    t.is(first.status, 200, first.text);
    t.is(first.headers.get('idempotent-replayed'), null);
    t.like(first.body.data, { accountId, balance: '25.50', available: '25.50', reserved: '0.00', transactionId });
    // the same amount written differently, and the id in upper case, are the same credit
    for (const [amount, id] of [
      ['25.50', transactionId],
      [25.5, transactionId],
      ['25.5', transactionId.toUpperCase()],
    ] as const) {
      const replay = await credit(accountId, amount, id);
      t.is(replay.status, 200, replay.text);
      t.is(replay.headers.get('idempotent-replayed'), 'true');
      t.like(replay.body.data, { balance: '25.50', transactionId });
    }
    t.deepEqual(await accountNumbers(balance, accountId), { balance: 2_550n, available: 2_550n, reserved: 0n, status: 'active' });
    t.deepEqual(await creditRows(transactionId), { credits: 1, outbox: 1 });

    const second = await credit(accountId, 1, uuidv4());
    t.is(second.status, 200);
    t.like(second.body.data, { balance: '26.50', available: '26.50' });
  },
);

test.serial('when a transactionId is reused with another amount or another account, then 422 42201 and nothing changes', async (t) => {
  const accountId = await createAccount('adm-mismatch');
  const otherAccountId = await createAccount('adm-mismatch-other');
  const transactionId = uuidv4();
  t.is((await credit(accountId, '10.00', transactionId)).status, 200);
  const before = await adminTableCounts();
  isRejection(t, await credit(accountId, '10.01', transactionId), 422, 42201);
  isRejection(t, await credit(otherAccountId, '10.00', transactionId), 422, 42201);
  t.deepEqual(await adminTableCounts(), before);
  t.is((await accountNumbers(balance, accountId)).balance, 1_000n);
  t.is((await accountNumbers(balance, otherAccountId)).balance, 0n);
});

test.serial(
  'when the same transactionId is credited to two accounts at once, then one is credited and the other gets 422 42201',
  async (t) => {
    const first = await createAccount('adm-race');
    const second = await createAccount('adm-race');
    const transactionId = uuidv4();
    // the first credit is in flight: done but not yet committed, on a connection of its own
    const inFlight = await system.db.client('balance');
    await inFlight.query('begin');
    const { rows } = await inFlight.query(`select outcome from account_credit($1, $2, 100, 'test')`, [transactionId, first]);
    t.deepEqual(rows, [{ outcome: 'credited' }]);
    const racing = credit(second, '1.00', transactionId);
    await waitUntilBlocked(inFlight);
    await inFlight.query('commit');
    const reply = await racing;
    isRejection(t, reply, 422, 42201);
    t.is((await accountNumbers(balance, first)).balance, 100n);
    t.is((await accountNumbers(balance, second)).balance, 0n);
    t.deepEqual(await creditRows(transactionId), { credits: 1, outbox: 1 });
  },
);

/** Waits until some other session of this database waits for a lock held by `holder`'s session. */
async function waitUntilBlocked(holder: pg.Client): Promise<void> {
  const {
    rows: [{ pid }],
  } = await holder.query('select pg_backend_pid() as pid');
  for (let attempt = 0; attempt < 500; attempt += 1) {
    const { rows } = await balance.query('select 1 from pg_stat_activity where $1 = any(pg_blocking_pids(pid))', [pid]);
    if (rows.length > 0) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error('the racing request never blocked on the in-flight credit');
}

test.serial('when a closed account is credited, then 422 42203; a frozen one still takes deposits', async (t) => {
  const closed = await createAccount('adm-closed');
  t.is((await admin('POST', `/admin/accounts/${closed}/status`, { status: 'closed' })).status, 200);
  const transactionId = uuidv4();
  isRejection(t, await credit(closed, '5.00', transactionId), 422, 42203);
  t.deepEqual(await creditRows(transactionId), { credits: 0, outbox: 0 });
  t.deepEqual(await accountNumbers(balance, closed), { balance: 0n, available: 0n, reserved: 0n, status: 'closed' });

  const frozen = await createAccount('adm-frozen');
  const frozenReply = await admin('POST', `/admin/accounts/${frozen}/status`, { status: 'frozen' });
  t.is(frozenReply.body.data.status, 'frozen');
  const deposit = await credit(frozen, '5.00', uuidv4());
  t.is(deposit.status, 200, deposit.text);
  t.like(deposit.body.data, { status: 'frozen', balance: '5.00' });
});

test.serial('when a credit request is invalid, then 400 or 404 and nothing is written', async (t) => {
  const accountId = await createAccount('adm-badcredit');
  const yen = await createAccount('adm-badcredit', 'JPY');
  const before = await adminTableCounts();
  for (const amount of ['0', '-1', '1.001', 'abc', null, 1e13, '', { v: 1 }]) {
    isRejection(t, await credit(accountId, amount, uuidv4()), 400, 40001, /amount/, JSON.stringify(amount));
  }
  isRejection(t, await credit(yen, '1.5', uuidv4()), 400, 40001, /amount/, 'JPY decimals');
  for (const transactionId of ['nope', '', 123, null]) {
    isRejection(t, await credit(accountId, '1.00', transactionId as string), 400, 40001, /transactionId/, JSON.stringify(transactionId));
  }
  isRejection(t, await credit(uuidv7(), '1.00', uuidv4()), 404, 40401, undefined, 'unknown account');
  isRejection(t, await credit('not-a-uuid', '1.00', uuidv4()), 404, 40401, undefined, 'malformed account');
  isRejection(t, await admin('POST', `/admin/accounts/${accountId}/status`, { status: 'deleted' }), 400, 40001, /status/);
  isRejection(t, await admin('POST', `/admin/accounts/${uuidv7()}/status`, { status: 'frozen' }), 404, 40401);
  t.deepEqual(await adminTableCounts(), before);
});

test.serial(
  'when an admin endpoint is called with no token, a user token or a wrong token, then 401 40101 and nothing is written',
  async (t) => {
    const accountId = await createAccount('adm-auth');
    const before = await adminTableCounts();
    const userToken = await system.userToken('adm-auth');
    const tokens: Array<[string, string | undefined]> = [
      ['none', undefined],
      ['user JWT', userToken],
      ['wrong', 'test-admin-token-0123456780'],
      ['prefix', TEST_SECRETS.ADMIN_TOKEN.slice(0, -1)],
      ['longer', `${TEST_SECRETS.ADMIN_TOKEN}0`],
      ['internal', TEST_SECRETS.INTERNAL_TOKEN],
    ];
    for (const [label, token] of tokens) {
      const requests: Array<[string, string, unknown]> = [
        ['POST', '/admin/accounts', { userId: 'adm-auth', currency: 'USD' }],
        ['GET', `/admin/accounts/${accountId}`, undefined],
        ['POST', `/admin/accounts/${accountId}/credits`, { amount: '1000.00', transactionId: uuidv4() }],
        ['POST', `/admin/accounts/${accountId}/status`, { status: 'closed' }],
      ];
      for (const [method, path, body] of requests) {
        const reply = await call(system.url, method, path, { ...(token ? { token } : {}), ...(body ? { body } : {}) });
        isRejection(t, reply, 401, 40101, undefined, `${label} ${method} ${path}`);
      }
    }
    t.deepEqual(await adminTableCounts(), before);
    t.deepEqual(await accountNumbers(balance, accountId), { balance: 0n, available: 0n, reserved: 0n, status: 'active' });
  },
);

test.serial('when a withdraw order is read, then its owner and the admin get every contract field; anyone else gets 404', async (t) => {
  const accountId = await system.fundedAccount('adm-owner', '50.00');
  const owner = await system.userToken('adm-owner');
  const stranger = await system.userToken('adm-stranger');
  await system.fundedAccount('adm-stranger', '50.00');
  const created = await system.withdraw(owner, { toAccountId: 'bank_9-Z', amount: '12.34' });
  t.is(created.status, 202, created.text);
  const { withdrawOrderId, transactionId } = created.body.data;

  const mine = await call(system.url, 'GET', `/withdraw/${withdrawOrderId}`, { token: owner });
  t.is(mine.status, 200, mine.text);
  t.is(mine.body.code, 0);
  const data = mine.body.data;
  t.deepEqual(Object.keys(data).sort(), [
    'amount',
    'createdAt',
    'currency',
    'fromAccountId',
    'status',
    'toAccountId',
    'transactionId',
    'updatedAt',
    'withdrawOrderId',
  ]);
  t.like(data, {
    withdrawOrderId,
    transactionId,
    status: 'init',
    amount: '12.34',
    currency: 'USD',
    fromAccountId: accountId,
    toAccountId: 'bank_9-Z',
  });
  t.regex(data.createdAt, ISO);
  t.regex(data.updatedAt, ISO);
  // touch the order (its guard trigger moves updated_at) so the two times differ
  // (the API shows milliseconds: touch it once the database clock is a millisecond past its creation)
  await eventually('the database clock to pass the order creation by 1 ms', async () => {
    const { rows } = await balance.query(
      `select clock_timestamp() >= created_at + interval '1 millisecond' as past from withdraw_orders where id = $1`,
      [withdrawOrderId],
    );
    return rows[0].past === true;
  });
  await balance.query('update withdraw_orders set failure_reason = null where id = $1', [withdrawOrderId]);
  const { rows } = await balance.query('select created_at, updated_at, transaction_id from withdraw_orders where id = $1', [
    withdrawOrderId,
  ]);
  const touched = (await call(system.url, 'GET', `/withdraw/${withdrawOrderId}`, { token: owner })).body.data;
  t.is(touched.createdAt, (rows[0].created_at as Date).toISOString());
  t.is(touched.updatedAt, (rows[0].updated_at as Date).toISOString());
  t.true(touched.updatedAt > touched.createdAt);
  t.is(data.transactionId, rows[0].transaction_id);

  const asAdmin = await call(system.url, 'GET', `/withdraw/${withdrawOrderId}`, { token: system.adminToken });
  t.is(asAdmin.status, 200, asAdmin.text);
  t.deepEqual(asAdmin.body.data, touched);

  isRejection(t, await call(system.url, 'GET', `/withdraw/${withdrawOrderId}`, { token: stranger }), 404, 40401, undefined, 'stranger');
  isRejection(t, await call(system.url, 'GET', `/withdraw/${uuidv7()}`, { token: owner }), 404, 40401, undefined, 'unknown');
  isRejection(
    t,
    await call(system.url, 'GET', `/withdraw/${uuidv7()}`, { token: system.adminToken }),
    404,
    40401,
    undefined,
    'unknown, admin',
  );
  isRejection(t, await call(system.url, 'GET', '/withdraw/garbage', { token: owner }), 404, 40401, undefined, 'garbage');
  isRejection(
    t,
    await call(system.url, 'GET', `/withdraw/${encodeURIComponent("x' or '1'='1")}`, { token: owner }),
    404,
    40401,
    undefined,
    'quote',
  );
  isRejection(t, await call(system.url, 'GET', `/withdraw/${withdrawOrderId}`), 401, 40101, undefined, 'no token');
  isRejection(
    t,
    await call(system.url, 'GET', `/withdraw/${withdrawOrderId}`, { token: TEST_SECRETS.INTERNAL_TOKEN }),
    401,
    40101,
    undefined,
    'internal',
  );
  // the stranger's 404 is indistinguishable from a missing order's
  const missing = await call(system.url, 'GET', `/withdraw/${uuidv7()}`, { token: stranger });
  const hidden = await call(system.url, 'GET', `/withdraw/${withdrawOrderId}`, { token: stranger });
  t.is(hidden.text, missing.text);
});
