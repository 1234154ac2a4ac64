import test from 'ava';
import { sql } from 'slonik';
import { z } from 'zod';
import { startTestSystem, type TestSystem } from './helpers/system.ts';

let system: TestSystem;
test.before(async () => {
  system = await startTestSystem({ env: { RATE_LIMIT_USER_PER_SECOND: '1', RATE_LIMIT_USER_BURST: '3' } });
});
test.after.always(async () => {
  await system?.stop();
});

test('when a user exceeds the rate, then 429 42901 with Retry-After, nothing written, and other users are unaffected', async (t) => {
  await system.fundedAccount('busy', '100.00');
  await system.fundedAccount('calm', '100.00');
  const busy = await system.userToken('busy');
  const replies = [];
  for (let i = 0; i < 6; i += 1) replies.push(await system.withdraw(busy, { toAccountId: 'b', amount: '1.00' }));
  const statuses = replies.map((r) => r.status);
  t.deepEqual(statuses.slice(0, 3), [202, 202, 202]);
  const limited = replies.filter((r) => r.status === 429);
  t.true(limited.length >= 2, statuses.join(','));
  for (const reply of limited) {
    t.is(reply.body.code, 42901);
    t.regex(reply.headers.get('retry-after') ?? '', /^\d+$/);
  }
  const orders = await system.db.databases.balance.oneFirst(sql.type(z.object({ n: z.number() }))`
    select count(*)::int as n from withdraw_orders where user_id = 'busy'`);
  t.is(orders, statuses.filter((s) => s === 202).length);
  const calm = await system.userToken('calm');
  t.is((await system.withdraw(calm, { toAccountId: 'b', amount: '1.00' })).status, 202);
});
