// A decimal STRING is digits with an optional point ("1000", "12.30"); a JSON NUMBER may use any form
// JSON allows, exponents included (1e3). Exponent notation inside a string ("1e3") is refused with
// 40001 naming the field, on every route that takes an amount, and writes nothing.
import test from 'ava';
import pg from 'pg';
import { v4 as uuidv4, v7 as uuidv7 } from 'uuid';
import { decimalInput } from '../app/http/zod.ts';
import { rowCounts } from './helpers/balanceChecks.ts';
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

const EXPONENT_STRINGS = ['1e3', '1E3', '1.5e2', '1e+3', '150e-2', '1E-2'];

test('when decimalInput reads a string with an exponent, then it refuses it; the same text as a JSON number passes', (t) => {
  for (const text of EXPONENT_STRINGS) {
    const parsed = decimalInput.safeParse(text);
    t.false(parsed.success, text);
    if (!parsed.success) t.regex(parsed.error.issues[0]?.message ?? '', /decimal string/, text);
  }
  for (const text of ['1000', '12.30', '0.01', '-1']) t.true(decimalInput.safeParse(text).success, text);
});

test.serial('when POST /withdraw carries the amount "1e3" as a string, then 400 40001 naming amount and nothing is written', async (t) => {
  await system.fundedAccount('strict-alice', '5000.00');
  const token = await system.userToken('strict-alice');
  const before = await rowCounts(balance);
  for (const amount of EXPONENT_STRINGS) {
    const reply = await system.withdraw(token, { toAccountId: 'bank-1', amount });
    t.is(reply.status, 400, `${amount}: ${reply.text}`);
    t.is(reply.body?.code, 40001, amount);
    t.regex(reply.body?.msg ?? '', /^amount: /, amount);
    t.is(reply.body?.data, null);
  }
  t.deepEqual(await rowCounts(balance), before, 'a refused amount wrote rows');
  // the same value as a JSON number in exponent form stays accepted
  const asNumber = await call(system.url, 'POST', '/withdraw', {
    token,
    headers: { 'idempotent-key': uuidv7() },
    rawBody: '{"toAccountId":"bank-1","amount":1e3}',
  });
  t.is(asNumber.status, 202, asNumber.text);
  const { rows } = await balance.query<{ amount: string }>(`select amount_minor::text as amount from withdraw_orders where user_id = $1`, [
    'strict-alice',
  ]);
  t.deepEqual(
    rows.map((r) => r.amount),
    ['100000'],
  );
});

test.serial('when a credit carries the amount "1e3" as a string, then 400 40001 naming amount and nothing is credited', async (t) => {
  const created = await call(system.url, 'POST', '/admin/accounts', {
    token: system.adminToken,
    body: { userId: 'strict-bob', currency: 'USD' },
  });
  const accountId = created.body.data.accountId as string;
  const reply = await call(system.url, 'POST', `/admin/accounts/${accountId}/credits`, {
    token: system.adminToken,
    body: { amount: '1e3', transactionId: uuidv4() },
  });
  t.is(reply.status, 400, reply.text);
  t.is(reply.body.code, 40001);
  t.regex(reply.body.msg, /^amount: /);
  const account = await call(system.url, 'GET', `/admin/accounts/${accountId}`, { token: system.adminToken });
  t.is(account.body.data.balance, '0.00');
});
