// GET /accounts and GET /accounts/{accountId}/statement, on a running system (web, worker, provider
// simulator): balances as the Balance DB holds them; a statement from the Ledger DB whose entries
// sum from the opening to the closing balance, each with its running balance, and whose closing
// balance is what the account can spend once the pipeline is quiet. Another user's account is 403.
import test from 'ava';
import { v4 as uuidv4 } from 'uuid';
import { call, type JsonReply } from './helpers/http.ts';
import { waitForQuiescence } from './helpers/quiescence.ts';
import { startTestSystem, type TestSystem } from './helpers/system.ts';

let system: TestSystem;

test.before(async () => {
  system = await startTestSystem({ worker: true });
});

test.after.always(async () => {
  await system?.stop();
});

/** Exact decimal strings to minor units (2 decimals), for sums without floats. */
const minor = (text: string) => {
  const negative = text.startsWith('-');
  const [units = '0', cents = ''] = (negative ? text.slice(1) : text).split('.');
  const value = BigInt(units) * 100n + BigInt(cents.padEnd(2, '0'));
  return negative ? -value : value;
};

async function statementPages(token: string, accountId: string, query: string) {
  const pages: any[] = [];
  let cursor: string | null = null;
  for (let i = 0; i < 200; i += 1) {
    const reply: JsonReply = await call(
      system.url,
      'GET',
      `/accounts/${accountId}/statement?${[query, cursor ? `cursor=${cursor}` : ''].filter(Boolean).join('&')}`,
      { token },
    );
    if (reply.status !== 200) throw new Error(reply.text);
    pages.push(reply.body.data);
    cursor = reply.body.data.nextCursor;
    if (cursor === null) return pages;
  }
  throw new Error('the statement did not end after 200 pages');
}

async function credit(accountId: string, amount: string): Promise<void> {
  const reply = await call(system.url, 'POST', `/admin/accounts/${accountId}/credits`, {
    token: system.adminToken,
    body: { amount, transactionId: uuidv4() },
  });
  if (reply.status !== 200) throw new Error(reply.text);
}

test.serial(
  'when deposits and withdrawals have settled, then the statement sums from opening to closing, and closes at the balance',
  async (t) => {
    const { balance, ledger } = system.db.databases;
    const accountId = await system.fundedAccount('stmt-alice', '100.00');
    const token = await system.userToken('stmt-alice');
    await credit(accountId, '20.50');
    const paid: string[] = [];
    for (const amount of ['10.00', '0.25', '3.10']) {
      const reply = await system.withdraw(token, { toAccountId: 'bank-1', amount });
      t.is(reply.status, 202, reply.text);
      paid.push(reply.body.data.withdrawOrderId);
    }
    // paid before the provider starts refusing (the knob applies to whatever it is sent next)
    const paidStatuses = await system.waitForOrders(paid, ['success', 'failed']);
    t.deepEqual([...new Set(paidStatuses.values())], ['success']);
    // one the provider refuses: its money comes back as an entry of its own
    system.sim!.setKnobs({ rejectRate: 1 });
    const rejected = await system.withdraw(token, { toAccountId: 'bank-1', amount: '7.00' });
    t.is(rejected.status, 202);
    await system.waitForOrders([rejected.body.data.withdrawOrderId], ['failed']);
    system.sim!.setKnobs({ rejectRate: 0 });
    await waitForQuiescence(balance, ledger);

    const accounts = await call(system.url, 'GET', '/accounts', { token });
    t.is(accounts.status, 200, accounts.text);
    t.deepEqual(accounts.body.data.items, [
      { accountId, currency: 'USD', status: 'active', balance: '107.15', available: '107.15', reserved: '0.00' },
    ]);

    const pages = await statementPages(token, accountId, 'limit=2');
    const items = pages.flatMap((page) => page.items);
    const [first] = pages;
    t.is(first.openingBalance, '0.00');
    for (const page of pages) {
      t.is(page.openingBalance, first.openingBalance, 'every page shows the period’s balances');
      t.is(page.closingBalance, first.closingBalance);
    }
    t.is(first.closingBalance, '107.15', 'closes at the balance: nothing is in flight');
    // the ledger posts in the order its events are relayed, not the order the orders were placed:
    // every entry once, and a returned withdrawal after its hold
    t.deepEqual(
      items.map((item) => `${item.kind} ${item.amount}`).sort(),
      [
        'deposit 100.00',
        'deposit 20.50',
        'withdrawal -10.00',
        'withdrawal -0.25',
        'withdrawal -3.10',
        'withdrawal -7.00',
        'withdrawal_returned 7.00',
      ].sort(),
    );
    const returned = items.findIndex((item) => item.kind === 'withdrawal_returned');
    const held = items.findIndex((item) => item.kind === 'withdrawal' && item.transactionId === items[returned].transactionId);
    t.true(held >= 0 && held < returned, 'the hold of the refused withdrawal comes before its return');
    let running = minor(first.openingBalance);
    for (const item of items) {
      running += minor(item.amount);
      t.is(minor(item.balanceAfter), running, `running balance after ${item.entryId}`);
    }
    t.is(running, minor(first.closingBalance), 'opening + every amount = closing');
    t.is(new Set(items.map((item) => item.entryId)).size, items.length, 'no entry twice across pages');

    // a period starting at an entry: the opening balance is the running balance just before it.
    // Entries posted in one ledger batch can share their time, so the period starts at the first
    // entry whose time (to the millisecond, as `at` shows it) is later than the one before it.
    const all = (await statementPages(token, accountId, 'limit=500'))[0];
    const k = all.items.findIndex((item: any, i: number) => i > 0 && Date.parse(item.at) > Date.parse(all.items[i - 1].at));
    t.true(k > 0, 'the deposits and the withdrawals were posted at different times');
    const period = (await statementPages(token, accountId, `from=${all.items[k].at}&limit=500`))[0];
    t.is(period.openingBalance, all.items[k - 1].balanceAfter);
    t.is(period.items[0].entryId, all.items[k].entryId);
    t.is(period.items.length, all.items.length - k);
    t.is(period.closingBalance, '107.15');
    const empty = (await statementPages(token, accountId, 'from=2000-01-01T00:00:00Z&to=2000-01-02T00:00:00Z'))[0];
    t.deepEqual([empty.openingBalance, empty.closingBalance, empty.items], ['0.00', '0.00', []]);
  },
);

test.serial(
  'when a withdrawal is still in flight, then the statement closes at what can be spent (available) and GET /accounts shows the hold',
  async (t) => {
    const { balance, ledger } = system.db.databases;
    const accountId = await system.fundedAccount('stmt-bob', '50.00');
    const token = await system.userToken('stmt-bob');
    system.sim!.setKnobs({ dropCallbackRate: 1 });
    const reply = await system.withdraw(token, { toAccountId: 'bank-1', amount: '12.00' });
    await system.waitForOrders([reply.body.data.withdrawOrderId], ['processing']);
    await waitForQuiescence(balance, ledger);
    system.sim!.setKnobs({ dropCallbackRate: 0 });
    const accounts = await call(system.url, 'GET', '/accounts', { token });
    t.like(accounts.body.data.items[0], { balance: '50.00', available: '38.00', reserved: '12.00' });
    const statement = (await statementPages(token, accountId, ''))[0];
    t.is(statement.closingBalance, accounts.body.data.items[0].available);
    t.is(
      statement.items.reduce((sum: bigint, item: any) => sum + minor(item.amount), minor(statement.openingBalance)),
      minor(statement.closingBalance),
    );
  },
);

test.serial('when a user asks for another user’s account, then 403; a missing account is 404; an admin may read any', async (t) => {
  const carolAccount = await system.fundedAccount('stmt-carol', '5.00');
  await system.fundedAccount('stmt-dave', '5.00');
  const dave = await system.userToken('stmt-dave');
  const foreign = await call(system.url, 'GET', `/accounts/${carolAccount}/statement`, { token: dave });
  t.is(foreign.status, 403, foreign.text);
  t.is(foreign.body.code, 40301);
  const mine = await call(system.url, 'GET', '/accounts', { token: dave });
  t.false(mine.body.data.items.some((item: any) => item.accountId === carolAccount));
  for (const id of [uuidv4(), 'not-an-id']) {
    const missing = await call(system.url, 'GET', `/accounts/${id}/statement`, { token: dave });
    t.is(missing.status, 404, missing.text);
    t.is(missing.body.code, 40401);
  }
  const admin = await call(system.url, 'GET', `/accounts/${carolAccount}/statement`, { token: system.adminToken });
  t.is(admin.status, 200, admin.text);
  const adminList = await call(system.url, 'GET', '/accounts?userId=stmt-carol', { token: system.adminToken });
  t.deepEqual(
    adminList.body.data.items.map((item: any) => [item.accountId, item.userId]),
    [[carolAccount, 'stmt-carol']],
  );
  const spying = await call(system.url, 'GET', '/accounts?userId=stmt-carol', { token: dave });
  t.is(spying.status, 400);
  const anonymous = await call(system.url, 'GET', `/accounts/${carolAccount}/statement`);
  t.is(anonymous.status, 401);
  for (const query of [
    'from=yesterday',
    'limit=0',
    'limit=501',
    'from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z',
    'cursor=abc',
    'x=1',
  ]) {
    const bad = await call(system.url, 'GET', `/accounts/${carolAccount}/statement?${query}`, { token: system.adminToken });
    t.is(bad.status, 400, `${query}: ${bad.text}`);
    t.is(bad.body.code, 40001);
  }
});
