import test from 'ava';
import { version as uuidVersion } from 'uuid';
import { call } from './helpers/http.ts';
import { startTestSystem, type TestSystem } from './helpers/system.ts';

let system: TestSystem;
test.before(async () => {
  system = await startTestSystem();
});
test.after.always(async () => {
  await system?.stop();
});

test('when a funded user withdraws, then 202 processing and the amount moves from available to reserved', async (t) => {
  const accountId = await system.fundedAccount('alice', '100.00');
  const token = await system.userToken('alice');
  const reply = await system.withdraw(token, { toAccountId: 'bank-123', amount: 12.34 });
  t.is(reply.status, 202, reply.text);
  t.is(reply.body.code, 0);
  t.is(reply.body.msg, 'processing');
  t.regex(reply.body.data.withdrawOrderId, /^[0-9a-f-]{36}$/);
  const account = await call(system.url, 'GET', `/admin/accounts/${accountId}`, { token: system.adminToken });
  t.deepEqual(
    { balance: account.body.data.balance, available: account.body.data.available, reserved: account.body.data.reserved },
    { balance: '100.00', available: '87.66', reserved: '12.34' },
  );
  const order = await call(system.url, 'GET', `/withdraw/${reply.body.data.withdrawOrderId}`, { token });
  t.is(order.status, 200);
  t.is(order.body.data.status, 'init');
  t.is(order.body.data.amount, '12.34');
  t.is(order.body.data.fromAccountId, accountId);
  t.is(order.body.data.toAccountId, 'bank-123');
  t.is(order.body.data.currency, 'USD');
  t.is(order.body.data.withdrawOrderId, reply.body.data.withdrawOrderId);
  t.is(order.body.data.transactionId, reply.body.data.transactionId);
  // both ids are UUIDv7: time-ordered, and the transactionId is the provider's idempotency key
  t.is(uuidVersion(reply.body.data.withdrawOrderId), 7);
  t.is(uuidVersion(reply.body.data.transactionId), 7);
  t.not(reply.body.data.transactionId, reply.body.data.withdrawOrderId);
});
