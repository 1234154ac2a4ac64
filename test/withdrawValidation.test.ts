// Every way POST /withdraw can be refused: the status, the envelope, and that a refusal writes
// nothing (business rejections store only their idempotency key, to be replayed).
import test, { type ExecutionContext } from 'ava';
import pg from 'pg';
import { v7 as uuidv7 } from 'uuid';
import { signUserToken } from '../app/http/auth.ts';
import { accountNumbers, rowCounts } from './helpers/balanceChecks.ts';
import { call, type JsonReply } from './helpers/http.ts';
import { startTestSystem, TEST_SECRETS, type TestSystem } from './helpers/system.ts';

let system: TestSystem;
let balance: pg.Pool;
let alice: { token: string; accountId: string };
let bobAccountId: string;

test.before(async () => {
  system = await startTestSystem();
  balance = new pg.Pool({ connectionString: system.db.balanceUrl, max: 2 });
  alice = { accountId: await system.fundedAccount('val-alice', '1000.00'), token: await system.userToken('val-alice') };
  bobAccountId = await system.fundedAccount('val-bob', '1000.00');
});

test.after.always(async () => {
  await balance?.end();
  await system?.stop();
});

const VALID = { toAccountId: 'bank-123', amount: '1.00' };

function post(options: {
  token?: string;
  body?: unknown;
  rawBody?: string | Buffer;
  headers?: Record<string, string>;
  key?: string | null;
}) {
  const headers: Record<string, string> = { ...(options.headers ?? {}) };
  if (options.key !== null) headers['idempotent-key'] = options.key ?? uuidv7();
  return call(system.url, 'POST', '/withdraw', {
    token: options.token,
    headers,
    ...(options.rawBody !== undefined ? { rawBody: options.rawBody } : { body: options.body ?? VALID }),
  });
}

/** status, envelope {code, msg, data: null} and an X-Request-Id on the reply */
function isRejection(t: ExecutionContext, reply: JsonReply, status: number, code: number, msg?: RegExp, label = ''): void {
  const where = `${label} ${reply.status} ${reply.text}`;
  t.is(reply.status, status, where);
  t.deepEqual(Object.keys(reply.body ?? {}).sort(), ['code', 'data', 'msg'], where);
  t.is(reply.body?.code, code, where);
  t.is(typeof reply.body?.msg, 'string', where);
  t.is(reply.body?.data, null, where);
  t.truthy(reply.headers.get('x-request-id'), where);
  if (msg) t.regex(reply.body?.msg ?? '', msg, where);
}

/** Runs `fn` and checks the tables a withdrawal writes to did not change. */
async function writesNothing(t: ExecutionContext, fn: () => Promise<void>): Promise<void> {
  const before = await rowCounts(balance);
  await fn();
  t.deepEqual(await rowCounts(balance), before, 'a rejected request wrote rows');
}

function base64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

test.serial(
  'when the user token is missing, expired, garbage or signed with another secret, then 401 40101 and nothing is written',
  async (t) => {
    const now = Math.floor(Date.now() / 1000);
    const tokens: Array<[string, Record<string, string>]> = [
      ['missing', {}],
      ['empty bearer', { authorization: 'Bearer ' }],
      ['basic scheme', { authorization: `Basic ${Buffer.from('val-alice:x').toString('base64')}` }],
      ['expired', { authorization: `Bearer ${await signUserToken(TEST_SECRETS.AUTH_JWT_SECRET, 'val-alice', -60)}` }],
      ['garbage', { authorization: 'Bearer garbage' }],
      ['garbage jwt shape', { authorization: 'Bearer aaa.bbb.ccc' }],
      ['wrong secret', { authorization: `Bearer ${await signUserToken('another-secret-0123456789-abcdefghijklmn', 'val-alice')}` }],
      [
        'alg none',
        { authorization: `Bearer ${base64url({ alg: 'none', typ: 'JWT' })}.${base64url({ sub: 'val-alice', exp: now + 600 })}.` },
      ],
      ['bad subject', { authorization: `Bearer ${await signUserToken(TEST_SECRETS.AUTH_JWT_SECRET, 'not a user id!')}` }],
      ['internal token', { authorization: `Bearer ${TEST_SECRETS.INTERNAL_TOKEN}` }],
    ];
    await writesNothing(t, async () => {
      for (const [label, headers] of tokens) {
        isRejection(t, await post({ headers, body: { ...VALID, fromAccountId: alice.accountId } }), 401, 40101, undefined, label);
      }
    });
    t.is((await accountNumbers(balance, alice.accountId)).reserved, 0n);
  },
);

test.serial(
  'when the admin token is used on POST /withdraw, then 401 40101: it is not a user credential, and nothing is written',
  async (t) => {
    await writesNothing(t, async () => {
      const reply = await post({ token: system.adminToken, body: { ...VALID, fromAccountId: alice.accountId } });
      isRejection(t, reply, 401, 40101);
    });
  },
);

test.serial("when fromAccountId is another user's account, then 403 40301 and nothing is written", async (t) => {
  await writesNothing(t, async () => {
    isRejection(t, await post({ token: alice.token, body: { ...VALID, fromAccountId: bobAccountId } }), 403, 40301);
    isRejection(t, await post({ token: alice.token, body: { ...VALID, fromAccountId: bobAccountId.toUpperCase() } }), 403, 40301);
  });
  t.is((await accountNumbers(balance, bobAccountId)).reserved, 0n);
});

test.serial('when fromAccountId is unknown or not a UUID, then 404 40401 and nothing is written', async (t) => {
  await writesNothing(t, async () => {
    for (const fromAccountId of [
      uuidv7(),
      '00000000-0000-0000-0000-000000000000',
      'abc',
      'wallet-1',
      '1 or 1=1',
      "'; drop table accounts; --",
    ]) {
      isRejection(t, await post({ token: alice.token, body: { ...VALID, fromAccountId } }), 404, 40401, undefined, fromAccountId);
    }
  });
});

test.serial('when the user has no account, then 404 40401 and nothing is written', async (t) => {
  const token = await system.userToken('val-nobody');
  await writesNothing(t, async () => {
    isRejection(t, await post({ token, body: VALID }), 404, 40401);
  });
});

test.serial('when toAccountId is invalid, then 400 40001 naming toAccountId, and nothing is written', async (t) => {
  const invalid: unknown[] = ['', 'a'.repeat(65), 'bad id', 'a/b', 'a.b', 'ü', 'a\nb', 123, null, true, ['bank'], { id: 'bank' }];
  await writesNothing(t, async () => {
    for (const toAccountId of invalid) {
      const reply = await post({ token: alice.token, body: { amount: '1.00', toAccountId } });
      isRejection(t, reply, 400, 40001, /toAccountId/, JSON.stringify(toAccountId));
    }
    isRejection(t, await post({ token: alice.token, body: { amount: '1.00' } }), 400, 40001, /toAccountId/, 'missing');
  });
  const longest = await post({ token: alice.token, body: { amount: '0.01', toAccountId: `${'a'.repeat(62)}_-` } });
  t.is(longest.status, 202, longest.text);
});

test.serial('when the amount is invalid, then 400 40001 naming amount, and nothing is written', async (t) => {
  const jpy = await system.fundedAccount('val-yen-amounts', '100000', 'JPY');
  const jpyToken = await system.userToken('val-yen-amounts');
  const usd = alice.accountId;
  const bodies: Array<[string, string, string]> = [
    // [label, account, raw JSON of the amount field ('' = field absent)]
    ['missing', usd, ''],
    ['null', usd, 'null'],
    ['true', usd, 'true'],
    ['negative', usd, '-1'],
    ['negative string', usd, '"-1.00"'],
    ['zero', usd, '0'],
    ['zero string', usd, '"0.00"'],
    ['abc', usd, '"abc"'],
    ['empty string', usd, '""'],
    ['padded', usd, '" 1.00"'],
    ['comma', usd, '"1,00"'],
    ['three decimals', usd, '1.001'],
    ['three decimals string', usd, '"1.001"'],
    ['JPY decimals', jpy, '1.5'],
    ['JPY decimals string', jpy, '"1.5"'],
    ['too large', usd, '1e13'],
    ['too large string', usd, '"10000000000000"'],
    ['huge exponent', usd, '"1e999999999"'],
    ['huge exponent number', usd, '1e999999999'],
    ['object', usd, '{"value":"1.00"}'],
    ['array', usd, '["1.00"]'],
    ['hex', usd, '"0x10"'],
    ['NaN', usd, '"NaN"'],
  ];
  await writesNothing(t, async () => {
    for (const [label, fromAccountId, amount] of bodies) {
      const rawBody = `{"toAccountId":"bank-1","fromAccountId":"${fromAccountId}"${amount ? `,"amount":${amount}` : ''}}`;
      const token = fromAccountId === jpy ? jpyToken : alice.token;
      isRejection(t, await post({ token, rawBody }), 400, 40001, /amount/, label);
    }
  });
  t.deepEqual(await accountNumbers(balance, jpy), { balance: 100_000n, available: 100_000n, reserved: 0n, status: 'active' });
});

test.serial('when the amount is the JSON number 123.12 or the string "123.12", then exactly 12312 minor units are reserved', async (t) => {
  const userId = 'val-exact';
  const accountId = await system.fundedAccount(userId, '1000.00');
  const token = await system.userToken(userId);
  const asNumber = await post({ token, rawBody: '{"toAccountId":"bank-1","amount":123.12}' });
  t.is(asNumber.status, 202, asNumber.text);
  t.is((await accountNumbers(balance, accountId)).reserved, 12_312n);
  const asString = await post({ token, body: { toAccountId: 'bank-1', amount: '123.12' } });
  t.is(asString.status, 202, asString.text);
  t.is((await accountNumbers(balance, accountId)).reserved, 24_624n);
  // values a float would round: still exact
  const tricky = await post({ token, rawBody: '{"toAccountId":"bank-1","amount":0.29}' });
  t.is(tricky.status, 202, tricky.text);
  const exponent = await post({ token, rawBody: '{"toAccountId":"bank-1","amount":1.5E+1}' });
  t.is(exponent.status, 202, exponent.text);
  const { rows } = await balance.query<{ amount: string }>(
    'select amount_minor::text as amount from withdraw_orders where user_id = $1 order by created_at, id',
    [userId],
  );
  t.deepEqual(rows.map((r) => r.amount).sort(), ['12312', '12312', '1500', '29'].sort());
  const order = await call(system.url, 'GET', `/withdraw/${asNumber.body.data.withdrawOrderId}`, { token });
  t.is(order.body.data.amount, '123.12');
});

test.serial(
  'when the body is not valid JSON, has conflicting duplicate keys, is not UTF-8 or is not an object, then 400 40001 and nothing is written',
  async (t) => {
    const bodies: Array<[string, string | Buffer]> = [
      ['duplicate amount', '{"toAccountId":"bank-1","amount":"1.00","amount":"2.00"}'],
      ['duplicate amount number', '{"toAccountId":"bank-1","amount":1,"amount":1.0}'],
      ['duplicate toAccountId', '{"toAccountId":"bank-1","toAccountId":"bank-2","amount":"1.00"}'],
      ['truncated', '{"toAccountId":"bank-1","amount":'],
      ['trailing comma', '{"toAccountId":"bank-1","amount":"1.00",}'],
      ['single quotes', "{'toAccountId':'bank-1','amount':'1.00'}"],
      ['two documents', '{"toAccountId":"bank-1","amount":"1.00"}{}'],
      [
        'invalid UTF-8',
        Buffer.concat([Buffer.from('{"toAccountId":"bank-'), Buffer.from([0xff, 0xfe]), Buffer.from('","amount":"1.00"}')]),
      ],
      [
        'overlong UTF-8',
        Buffer.concat([Buffer.from('{"toAccountId":"bank'), Buffer.from([0xc0, 0xaf]), Buffer.from('","amount":"1.00"}')]),
      ],
      ['array', '[{"toAccountId":"bank-1","amount":"1.00"}]'],
      ['string', '"hello"'],
      ['null', 'null'],
      ['number', '42'],
      ['empty', ''],
    ];
    await writesNothing(t, async () => {
      for (const [label, rawBody] of bodies) {
        isRejection(t, await post({ token: alice.token, rawBody }), 400, 40001, undefined, label);
      }
    });
    // the same key twice with the same value is not a conflict
    const same = await post({ token: alice.token, rawBody: '{"toAccountId":"bank-1","amount":"0.01","amount":"0.01"}' });
    t.is(same.status, 202, same.text);
  },
);

test.serial('when the body is over the size limit, then 413 and nothing is written', async (t) => {
  const padding = 'x'.repeat(system.config.http.bodySizeMaxBytes);
  await writesNothing(t, async () => {
    const reply = await post({ token: alice.token, rawBody: JSON.stringify({ ...VALID, padding }) });
    isRejection(t, reply, 413, 41301);
  });
});

test.serial('when the account is frozen or closed, then 422 42203, stored with the key and replayed', async (t) => {
  for (const status of ['frozen', 'closed'] as const) {
    const userId = `val-${status}`;
    const accountId = await system.fundedAccount(userId, '100.00');
    const token = await system.userToken(userId);
    const changed = await call(system.url, 'POST', `/admin/accounts/${accountId}/status`, { token: system.adminToken, body: { status } });
    t.is(changed.status, 200, changed.text);
    const key = uuidv7();
    const body = { toAccountId: 'bank-1', amount: '1.00', fromAccountId: accountId };
    const before = await rowCounts(balance);
    const first = await post({ token, body, key });
    isRejection(t, first, 422, 42203, undefined, status);
    t.is(first.headers.get('idempotent-replayed'), null);
    t.deepEqual(await rowCounts(balance), { ...before, idempotency_keys: before.idempotency_keys + 1 });
    // replayed from the stored key even once the account is usable again
    await call(system.url, 'POST', `/admin/accounts/${accountId}/status`, { token: system.adminToken, body: { status: 'active' } });
    const replay = await post({ token, body, key });
    t.is(replay.status, 422);
    t.is(replay.text, first.text);
    t.is(replay.headers.get('idempotent-replayed'), 'true');
    t.deepEqual(await accountNumbers(balance, accountId), { balance: 10_000n, available: 10_000n, reserved: 0n, status: 'active' });
  }
});

test.serial(
  'when a user has two accounts and sends no fromAccountId, then 400 naming fromAccountId; the currency field picks the account, and one contradicting the account is a stored 42203',
  async (t) => {
    const userId = 'val-multi';
    const usd = await system.fundedAccount(userId, '100.00', 'USD');
    const eur = await system.fundedAccount(userId, '100.00', 'EUR');
    const token = await system.userToken(userId);
    await writesNothing(t, async () => {
      isRejection(t, await post({ token, body: { toAccountId: 'bank-1', amount: '1.00' } }), 400, 40001, /fromAccountId/);
      // a currency the user has no account in
      isRejection(t, await post({ token, body: { toAccountId: 'bank-1', amount: '1.00', currency: 'GBP' } }), 404, 40401);
      isRejection(t, await post({ token, body: { toAccountId: 'bank-1', amount: '1.00', currency: 'XXX' } }), 400, 40001, /currency/);
    });
    // a currency that contradicts the account: a business rejection, stored with the key and replayed
    const key = uuidv7();
    const mismatch = { toAccountId: 'bank-1', amount: '1.00', currency: 'EUR', fromAccountId: usd };
    const refused = await post({ token, body: mismatch, key });
    isRejection(t, refused, 422, 42203);
    const replayed = await post({ token, body: mismatch, key });
    t.is(replayed.text, refused.text);
    t.is(replayed.headers.get('idempotent-replayed'), 'true');
    isRejection(t, await post({ token, body: { ...mismatch, currency: 'USD' }, key }), 422, 42201);
    const reply = await post({ token, body: { toAccountId: 'bank-1', amount: '2.50', currency: 'EUR' } });
    t.is(reply.status, 202, reply.text);
    const { rows } = await balance.query('select account_id, currency, amount_minor::text as amount from withdraw_orders where id = $1', [
      reply.body.data.withdrawOrderId,
    ]);
    t.deepEqual(rows, [{ account_id: eur, currency: 'EUR', amount: '250' }]);
    t.is((await accountNumbers(balance, usd)).reserved, 0n);
    t.is((await accountNumbers(balance, eur)).reserved, 250n);
  },
);

test.serial('when a JPY wallet withdraws "1500", then 1500 minor units (yen) are reserved', async (t) => {
  const userId = 'val-yen';
  const accountId = await system.fundedAccount(userId, '10000', 'JPY');
  const token = await system.userToken(userId);
  const reply = await post({ token, body: { toAccountId: 'bank-1', amount: '1500' } });
  t.is(reply.status, 202, reply.text);
  t.deepEqual(await accountNumbers(balance, accountId), { balance: 10_000n, available: 8_500n, reserved: 1_500n, status: 'active' });
  const order = await call(system.url, 'GET', `/withdraw/${reply.body.data.withdrawOrderId}`, { token });
  t.is(order.body.data.amount, '1500');
  t.is(order.body.data.currency, 'JPY');
});

test.serial('when a request presents an X-Request-Id, then it is echoed; otherwise one is generated', async (t) => {
  const presented = 'req-0123456789:abc.def_ghi';
  const rejected = await post({ token: alice.token, body: { toAccountId: '' }, headers: { 'x-request-id': presented } });
  isRejection(t, rejected, 400, 40001);
  t.is(rejected.headers.get('x-request-id'), presented);
  const accepted = await post({
    token: alice.token,
    body: { toAccountId: 'bank-1', amount: '0.01' },
    headers: { 'x-request-id': presented },
  });
  t.is(accepted.status, 202, accepted.text);
  t.is(accepted.headers.get('x-request-id'), presented);
  const unauthenticated = await post({ body: VALID, headers: { 'x-request-id': presented } });
  t.is(unauthenticated.headers.get('x-request-id'), presented);
  const generated = await post({ body: VALID });
  t.regex(generated.headers.get('x-request-id') ?? '', /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  // an unsafe id (spaces, too long) is replaced, not echoed into logs
  const unsafe = await post({ body: VALID, headers: { 'x-request-id': 'a b c' } });
  t.not(unsafe.headers.get('x-request-id'), 'a b c');
  t.truthy(unsafe.headers.get('x-request-id'));
  const long = await post({ body: VALID, headers: { 'x-request-id': 'a'.repeat(129) } });
  t.not(long.headers.get('x-request-id'), 'a'.repeat(129));
});

test.serial('when an unknown route or method is asked for, then the envelope says 404', async (t) => {
  isRejection(t, await call(system.url, 'GET', '/nope', { token: alice.token }), 404, 40401);
  isRejection(t, await call(system.url, 'DELETE', '/withdraw', { token: alice.token }), 404, 40401);
});
