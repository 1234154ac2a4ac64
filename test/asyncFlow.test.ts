import test from 'ava';
import { sql } from 'slonik';
import { z } from 'zod';
import { allInvariants } from '../reconcile/invariants.ts';
import { call } from './helpers/http.ts';
import { waitForQuiescence } from './helpers/quiescence.ts';
import { startTestSystem, type TestSystem } from './helpers/system.ts';

let system: TestSystem;
test.before(async () => {
  system = await startTestSystem({ worker: true });
});
test.after.always(async () => {
  await system?.stop();
});

test('when a withdrawal is requested, then it reaches success by itself and both databases agree', async (t) => {
  const accountId = await system.fundedAccount('bob', '50.00');
  const token = await system.userToken('bob');
  const reply = await system.withdraw(token, { toAccountId: 'bank-1', amount: '20.00' });
  t.is(reply.status, 202, reply.text);
  const orderId = reply.body.data.withdrawOrderId as string;
  const statuses = await system.waitForOrders([orderId], ['success', 'failed']);
  t.is(statuses.get(orderId), 'success');
  await waitForQuiescence(system.db.databases.balance, system.db.databases.ledger);
  const account = await call(system.url, 'GET', `/admin/accounts/${accountId}`, { token: system.adminToken });
  t.like(account.body.data, { balance: '30.00', available: '30.00', reserved: '0.00' });
  t.deepEqual(await allInvariants(system.db.databases.balance, system.db.databases.ledger), []);
  const kinds = await system.db.databases.ledger.anyFirst(sql.type(z.object({ kind: z.string() }))`
    select kind from journal_transactions where transaction_id = ${reply.body.data.transactionId} order by id`);
  t.deepEqual(kinds, ['hold', 'settle']);
  const history = await system.db.databases.balance.anyFirst(sql.type(z.object({ to: z.string() }))`
    select to_status as "to" from withdraw_status_history where order_id = ${orderId} order by id`);
  t.deepEqual(history, ['init', 'processing', 'success']);
});
