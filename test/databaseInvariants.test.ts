// The invariants the databases enforce by themselves, checked with plain SQL (no web process):
// I1 on accounts, the order state machine and reservation guards on the Balance DB; I4 (balanced,
// append-only journal) and the running balances of ledger_post on the Ledger DB.
import { readFileSync } from 'node:fs';
import test, { type ExecutionContext } from 'ava';
import fc from 'fast-check';
import type pg from 'pg';
import { newDb } from 'pg-mem';
import { v4 as uuidv4, v7 as uuidv7 } from 'uuid';
import { sqlDir } from '../app/paths.ts';
import { canTransition, NEXT, WITHDRAW_STATUSES } from '../app/withdraw/withdrawStateMachine.ts';
import { createTestDatabases, type TestDatabases } from './helpers/testDatabases.ts';

let db: TestDatabases;
let balance: pg.Client;
let ledger: pg.Client;

test.before(async () => {
  db = await createTestDatabases({ poolSizeMax: 2 });
  balance = await db.client('balance');
  ledger = await db.client('ledger');
});

test.after.always(async () => {
  await db?.drop();
});

type PgFailure = Readonly<{ code: string | undefined; constraint: string | undefined; message: string }>;

/** The error a statement fails with; fails the test if it succeeds. */
async function failure(t: ExecutionContext, run: () => Promise<unknown>, label: string): Promise<PgFailure> {
  try {
    await run();
  } catch (error) {
    const e = error as { code?: string; constraint?: string; message: string };
    return { code: e.code, constraint: e.constraint, message: e.message };
  }
  t.fail(`${label}: expected the database to refuse it`);
  return { code: undefined, constraint: undefined, message: '' };
}

/** Runs `fn` in a transaction on `client` that is always rolled back. */
async function rolledBack<T>(client: pg.Client, fn: () => Promise<T>): Promise<T> {
  await client.query('begin');
  try {
    return await fn();
  } finally {
    await client.query('rollback');
  }
}

/** Runs `fn` in a savepoint so one refused statement does not end the surrounding transaction. */
async function inSavepoint<T>(client: pg.Client, fn: () => Promise<T>): Promise<T> {
  await client.query('savepoint attempt');
  try {
    const result = await fn();
    await client.query('release savepoint attempt');
    return result;
  } catch (error) {
    await client.query('rollback to savepoint attempt');
    throw error;
  }
}

async function insertAccount(client: pg.Client, userId: string, availableMinor = 0n, reservedMinor = 0n): Promise<string> {
  const { rows } = await client.query<{ id: string }>(
    `insert into accounts (user_id, currency, balance_minor, available_minor, reserved_minor)
     values ($1, 'USD', $2::bigint + $3::bigint, $2, $3) returning id`,
    [userId, availableMinor.toString(), reservedMinor.toString()],
  );
  return rows[0]!.id;
}

async function insertOrder(
  client: pg.Client,
  accountId: string,
  status: string,
  amountMinor = 100n,
): Promise<{ id: string; transactionId: string }> {
  const id = uuidv7();
  const transactionId = uuidv7();
  await client.query(
    `insert into withdraw_orders (id, transaction_id, user_id, account_id, to_account_id, amount_minor, currency, status)
     values ($1, $2, 'db-user', $3, 'bank-1', $4, 'USD', $5)`,
    [id, transactionId, accountId, amountMinor.toString(), status],
  );
  return { id, transactionId };
}

// ---------------------------------------------------------------- Balance DB

test.serial(
  'when an update would make available or reserved negative, or break balance = available + reserved, then the accounts CHECKs refuse it',
  async (t) => {
    const accountId = await insertAccount(balance, 'db-checks', 1_000n, 0n);
    const attempts: Array<[string, string, string]> = [
      ['available < 0', 'balance_minor = 0, available_minor = -1, reserved_minor = 1', 'accounts_available_nonnegative'],
      ['reserved < 0', 'balance_minor = 0, available_minor = 1, reserved_minor = -1', 'accounts_reserved_nonnegative'],
      ['split broken', 'balance_minor = 1000, available_minor = 500, reserved_minor = 499', 'accounts_balance_split'],
      ['overdraw', 'available_minor = available_minor - 1001, reserved_minor = reserved_minor + 1001', 'accounts_available_nonnegative'],
      ['balance alone', 'balance_minor = balance_minor + 1', 'accounts_balance_split'],
    ];
    for (const [label, assignment, constraint] of attempts) {
      const refused = await failure(t, () => balance.query(`update accounts set ${assignment} where id = $1`, [accountId]), label);
      t.is(refused.code, '23514', label);
      t.is(refused.constraint, constraint, label);
    }
    const insert = await failure(
      t,
      () =>
        balance.query(
          `insert into accounts (user_id, currency, balance_minor, available_minor, reserved_minor) values ('db-checks', 'USD', 5, 5, 1)`,
        ),
      'insert with a broken split',
    );
    t.is(insert.constraint, 'accounts_balance_split');
    // the legal move of a reservation passes, so the refusals above are about the numbers
    await balance.query('update accounts set available_minor = 0, reserved_minor = 1000 where id = $1', [accountId]);
    const { rows } = await balance.query(
      'select balance_minor::text as b, available_minor::text as a, reserved_minor::text as r from accounts where id = $1',
      [accountId],
    );
    t.deepEqual(rows, [{ b: '1000', a: '0', r: '1000' }]);
  },
);

test.serial('when the SQL transition table is read, then it is exactly the state machine of the code', async (t) => {
  const { rows } = await balance.query<{ from_status: string; to_status: string }>(
    'select from_status, to_status from withdraw_transitions order by 1, 2',
  );
  const fromCode = Object.entries(NEXT).flatMap(([from, tos]) => tos.map((to) => ({ from_status: from, to_status: to })));
  const order = (a: { from_status: string; to_status: string }, b: { from_status: string; to_status: string }) =>
    `${a.from_status}/${a.to_status}`.localeCompare(`${b.from_status}/${b.to_status}`);
  t.deepEqual([...rows].sort(order), fromCode.sort(order));
});

test.serial('when an order changes status, then the trigger allows exactly the moves of the state machine', async (t) => {
  const accountId = await insertAccount(balance, 'db-transitions');
  await rolledBack(balance, async () => {
    for (const from of WITHDRAW_STATUSES) {
      for (const to of WITHDRAW_STATUSES) {
        if (from === to) continue;
        const order = await insertOrder(balance, accountId, from);
        const label = `${from} -> ${to}`;
        const move = () =>
          inSavepoint(balance, () => balance.query('update withdraw_orders set status = $2 where id = $1', [order.id, to]));
        if (canTransition(from, to)) {
          await move();
          const { rows } = await balance.query('select status from withdraw_orders where id = $1', [order.id]);
          t.is(rows[0].status, to, label);
        } else {
          const refused = await failure(t, move, label);
          t.is(refused.constraint, 'withdraw_orders_transition_allowed', label);
          t.is(refused.code, '23514', label);
        }
      }
    }
  });
});

test.serial('when an order gets an unknown status or its defining fields change, then the database refuses', async (t) => {
  const accountId = await insertAccount(balance, 'db-orders');
  const otherAccountId = await insertAccount(balance, 'db-orders');
  const unknown = await failure(t, () => insertOrder(balance, accountId, 'paid'), 'unknown status on insert');
  t.is(unknown.constraint, 'withdraw_orders_status_known');
  const order = await insertOrder(balance, accountId, 'init');
  const updateUnknown = await failure(
    t,
    () => balance.query(`update withdraw_orders set status = 'paid' where id = $1`, [order.id]),
    'unknown status',
  );
  t.is(updateUnknown.code, '23514');
  const changes: Array<[string, string, unknown[]]> = [
    ['amount', 'amount_minor = amount_minor + 1', []],
    ['account', 'account_id = $2', [otherAccountId]],
    ['destination', `to_account_id = 'bank-2'`, []],
    ['currency', `currency = 'EUR'`, []],
    ['transaction id', 'transaction_id = $2', [uuidv7()]],
    ['user', `user_id = 'someone-else'`, []],
    ['created_at', `created_at = created_at - interval '1 day'`, []],
  ];
  for (const [label, assignment, extra] of changes) {
    const refused = await failure(
      t,
      () => balance.query(`update withdraw_orders set ${assignment} where id = $1`, [order.id, ...extra]),
      label,
    );
    t.is(refused.constraint, 'withdraw_orders_immutable', label);
  }
  for (const [label, column, value] of [
    ['zero amount', 'amount_minor', '0'],
    ['bad destination', 'to_account_id', 'bad id'],
  ] as const) {
    const refused = await failure(
      t,
      () =>
        balance.query(
          `insert into withdraw_orders (id, transaction_id, user_id, account_id, to_account_id, amount_minor, currency, status)
       values ($1, $2, 'db-user', $3, ${column === 'to_account_id' ? '$4' : `'bank-1'`}, ${column === 'amount_minor' ? '$4' : '1'}, 'USD', 'init')`,
          [uuidv7(), uuidv7(), accountId, value],
        ),
      label,
    );
    t.is(refused.code, '23514', label);
  }
  const { rows } = await balance.query('select status, amount_minor::text as amount from withdraw_orders where id = $1', [order.id]);
  t.deepEqual(rows, [{ status: 'init', amount: '100' }]);
});

test.serial('when a history row records a move the state machine does not allow, then its foreign key refuses it', async (t) => {
  const accountId = await insertAccount(balance, 'db-history');
  const order = await insertOrder(balance, accountId, 'init');
  const refused = await failure(
    t,
    () =>
      balance.query(`insert into withdraw_status_history (order_id, from_status, to_status, actor) values ($1, 'init', 'success', 'job')`, [
        order.id,
      ]),
    'init -> success in history',
  );
  t.is(refused.constraint, 'withdraw_status_history_transition_allowed');
  // an allowed move is recorded
  const allowed = await balance.query(
    `insert into withdraw_status_history (order_id, from_status, to_status, actor) values ($1, 'init', 'processing', 'job')
     returning from_status, to_status`,
    [order.id],
  );
  t.deepEqual(allowed.rows, [{ from_status: 'init', to_status: 'processing' }]);
  const { rows } = await balance.query('select from_status, to_status from withdraw_status_history where order_id = $1 order by id', [
    order.id,
  ]);
  t.deepEqual(rows, [{ from_status: 'init', to_status: 'processing' }], 'the refused move left no row');
});

test.serial(
  'when a reservation is final, then it cannot go back to held nor change to the other final state, and its amount is fixed',
  async (t) => {
    const accountId = await insertAccount(balance, 'db-reservations');
    const reservation = async (status: string) => {
      const transactionId = uuidv7();
      await balance.query(`insert into reservations (transaction_id, account_id, amount_minor, status) values ($1, $2, 100, $3)`, [
        transactionId,
        accountId,
        status,
      ]);
      return transactionId;
    };
    const setStatus = (transactionId: string, status: string) =>
      balance.query('update reservations set status = $2 where transaction_id = $1', [transactionId, status]);
    for (const [from, to] of [
      ['captured', 'held'],
      ['released', 'held'],
      ['captured', 'released'],
      ['released', 'captured'],
    ]) {
      const refused = await failure(t, async () => setStatus(await reservation(from!), to!), `${from} -> ${to}`);
      t.is(refused.constraint, 'reservations_final', `${from} -> ${to}`);
    }
    const held = await reservation('held');
    const amount = await failure(
      t,
      () => balance.query('update reservations set amount_minor = 1 where transaction_id = $1', [held]),
      'amount',
    );
    t.is(amount.constraint, 'reservations_immutable');
    await setStatus(held, 'captured');
    const back = await failure(t, () => setStatus(held, 'held'), 'captured back to held');
    t.is(back.constraint, 'reservations_final');
    const unknown = await failure(t, () => reservation('pending'), 'unknown status');
    t.is(unknown.constraint, 'reservations_status_known');
  },
);

// ---------------------------------------------------------------- Ledger DB

type LedgerEvent = { source: string; transactionId: string; kind: string; accountId: string; currency: string; amountMinor: string };

async function post(events: LedgerEvent[], client: pg.Client = ledger) {
  const { rows } = await client.query<{ transaction_id: string; kind: string; journal_id: string; posted: boolean }>(
    'select * from ledger_post($1::jsonb)',
    [JSON.stringify(events)],
  );
  return rows;
}

function event(kind: string, accountId: string, amountMinor: bigint, transactionId = uuidv4(), currency = 'USD'): LedgerEvent {
  return { source: 'test', transactionId, kind, accountId, currency, amountMinor: amountMinor.toString() };
}

async function entriesOf(transactionId: string) {
  const { rows } = await ledger.query<{ kind: string; code: string; amount: string }>(
    `select j.kind, a.code, e.amount_minor::text as amount
       from entries e join journal_transactions j on j.id = e.journal_id join ledger_accounts a on a.id = e.ledger_account_id
      where j.transaction_id = $1 order by e.id`,
    [transactionId],
  );
  return rows;
}

async function accountEntries(code: string) {
  const { rows } = await ledger.query<{
    seq: string;
    amount: string;
    previous: string;
    current: string;
    previous_hash: Buffer | null;
    hash: Buffer;
  }>(
    `select e.account_sequence::text as seq, e.amount_minor::text as amount, e.previous_balance_minor::text as previous,
            e.current_balance_minor::text as current, e.previous_hash, e.hash
       from entries e join ledger_accounts a on a.id = e.ledger_account_id where a.code = $1 order by e.account_sequence`,
    [code],
  );
  return rows;
}

test.serial('when a deposit is posted, then two entries sum to zero; posted again, then posted=false and no new entries', async (t) => {
  const accountId = uuidv4();
  const deposit = event('deposit', accountId, 500n);
  const first = await post([deposit]);
  t.is(first.length, 1);
  t.like(first[0], { transaction_id: deposit.transactionId, kind: 'deposit', posted: true });
  const entries = await entriesOf(deposit.transactionId);
  t.deepEqual(entries, [
    { kind: 'deposit', code: 'funding:USD', amount: '500' },
    { kind: 'deposit', code: `wallet:${accountId}`, amount: '-500' },
  ]);
  t.is(
    entries.reduce((sum, e) => sum + BigInt(e.amount), 0n),
    0n,
  );

  const again = await post([deposit]);
  t.deepEqual(again, [{ transaction_id: deposit.transactionId, kind: 'deposit', journal_id: first[0]!.journal_id, posted: false }]);
  t.is((await entriesOf(deposit.transactionId)).length, 2);
  const { rows } = await ledger.query('select count(*)::int as n from journal_transactions where transaction_id = $1', [
    deposit.transactionId,
  ]);
  t.is(rows[0].n, 1);
});

test.serial('when the same event is posted from many connections at once, then it is journaled once', async (t) => {
  const deposit = event('deposit', uuidv4(), 700n);
  const clients = await Promise.all(Array.from({ length: 8 }, () => db.client('ledger')));
  const results = await Promise.all(clients.map((client) => post([deposit], client)));
  t.is(results.flat().filter((r) => r.posted).length, 1);
  t.is((await entriesOf(deposit.transactionId)).length, 2);
  await Promise.all(clients.map((client) => client.end()));
});

test.serial('when entries or journal transactions are updated, deleted or truncated, then the ledger refuses', async (t) => {
  const deposit = event('deposit', uuidv4(), 300n);
  const [posted] = await post([deposit]);
  const journalId = posted!.journal_id;
  const statements: Array<[string, string, unknown[]]> = [
    ['update entries', 'update entries set amount_minor = amount_minor + 1 where journal_id = $1', [journalId]],
    ['delete entries', 'delete from entries where journal_id = $1', [journalId]],
    ['truncate entries', 'truncate entries', []],
    ['update journal', `update journal_transactions set source = 'edited' where id = $1`, [journalId]],
    ['delete journal', 'delete from journal_transactions where id = $1', [journalId]],
  ];
  for (const [label, statement, values] of statements) {
    const refused = await failure(t, () => ledger.query(statement, values), label);
    t.is(refused.code, '42501', label);
    t.regex(refused.message, /append-only/, label);
  }
  // journal_transactions' own TRUNCATE guard, without the foreign key from entries in the way
  const truncated = await rolledBack(ledger, () =>
    failure(
      t,
      async () => {
        await ledger.query('alter table entries drop constraint entries_journal_id_fkey');
        await ledger.query('truncate journal_transactions');
      },
      'truncate journal',
    ),
  );
  t.regex(truncated.message, /journal_transactions is append-only/);
  t.is((await entriesOf(deposit.transactionId)).length, 2);
  t.deepEqual(
    (await entriesOf(deposit.transactionId)).map((e) => e.amount),
    ['300', '-300'],
  );
});

test.serial(
  'when a journal transaction is written by hand unbalanced, with one entry, or apart from its entries, then the statement fails; balanced in one statement, it commits',
  async (t) => {
    const { rows: accounts } = await ledger.query<{ id: string }>(
      `insert into ledger_accounts (code, kind, currency) values ('funding:HAND1', 'funding', 'USD'), ('funding:HAND2', 'funding', 'USD')
     returning id`,
    );
    const [a, b] = accounts.map((r) => r.id);
    // a journal and its entries in ONE statement (as ledger_post writes them)
    const journalWith = (legs: ReadonlyArray<readonly [string, number]>) =>
      ledger.query<{ id: string }>(
        `with j as (insert into journal_transactions (transaction_id, kind, source) values ($1, 'deposit', 'hand') returning id),
              e as (insert into entries (journal_id, ledger_account_id, amount_minor, currency, account_sequence,
                                         previous_balance_minor, current_balance_minor, hash)
                    select j.id, l.account, l.amount, 'USD', 1, 0, l.amount, '\\x00'
                      from j cross join unnest($2::bigint[], $3::bigint[]) as l(account, amount))
         select id::text from j`,
        [uuidv4(), legs.map(([account]) => account), legs.map(([, amount]) => amount)],
      );
    const attempts: Array<[string, () => Promise<unknown>]> = [
      ['one entry', () => journalWith([[a!, 100]])],
      [
        'unbalanced',
        () =>
          journalWith([
            [a!, 100],
            [b!, -99],
          ]),
      ],
      [
        'no entries',
        () => ledger.query(`insert into journal_transactions (transaction_id, kind, source) values ($1, 'deposit', 'hand')`, [uuidv4()]),
      ],
      [
        'entries apart from their journal',
        async () => {
          await ledger.query('begin');
          try {
            await ledger.query(`set constraints all deferred`);
            await ledger.query(`insert into journal_transactions (transaction_id, kind, source) values ($1, 'deposit', 'hand')`, [
              uuidv4(),
            ]);
          } finally {
            await ledger.query('rollback');
          }
        },
      ],
    ];
    for (const [label, write] of attempts) {
      const refused = await failure(t, write, label);
      t.is(refused.constraint, 'journal_transactions_balanced', label);
      t.is(refused.code, '23514', label);
    }
    const { rows: after } = await ledger.query(`select count(*)::int as n from journal_transactions where source = 'hand'`);
    t.is(after[0].n, 0);

    await ledger.query('begin');
    const j = (
      await journalWith([
        [a!, 100],
        [b!, -100],
      ])
    ).rows[0]!.id;
    await ledger.query(
      `update ledger_accounts set balance_minor = case id when $1 then 100 else -100 end, entry_count = 1 where id = any($2::bigint[])`,
      [a, [a, b]],
    );
    await ledger.query('commit');
    const { rows: committed } = await ledger.query(`select count(*)::int as n from entries where journal_id = $1`, [j]);
    t.is(committed[0].n, 2);
  },
);

test.serial('when several postings hit one account, then its sequence, running balance and hash chain continue without gaps', async (t) => {
  const accountId = uuidv4();
  const otherId = uuidv4();
  const amounts = [500n, 250n, 1n, 10_000n];
  for (const amount of amounts) await post([event('deposit', accountId, amount), event('deposit', otherId, amount * 2n)]);
  await post([event('hold', accountId, 700n)]);
  for (const [code, expectedAmounts] of [
    [`wallet:${accountId}`, [...amounts.map((a) => -a), 700n]],
    [`wallet:${otherId}`, amounts.map((a) => -2n * a)],
  ] as const) {
    const rows = await accountEntries(code);
    t.deepEqual(
      rows.map((r) => r.seq),
      expectedAmounts.map((_, i) => String(i + 1)),
      code,
    );
    t.deepEqual(
      rows.map((r) => BigInt(r.amount)),
      [...expectedAmounts],
      code,
    );
    let running = 0n;
    let previousHash: Buffer | null = null;
    for (const row of rows) {
      t.is(BigInt(row.previous), running, `${code} #${row.seq} previous balance`);
      running += BigInt(row.amount);
      t.is(BigInt(row.current), running, `${code} #${row.seq} current balance`);
      t.deepEqual(row.previous_hash, previousHash, `${code} #${row.seq} hash chain`);
      previousHash = row.hash;
    }
    const { rows: account } = await ledger.query(
      'select balance_minor::text as balance, entry_count::text as n, last_entry_hash from ledger_accounts where code = $1',
      [code],
    );
    t.deepEqual(account[0], { balance: running.toString(), n: String(rows.length), last_entry_hash: previousHash });
  }
  // funding took every deposit of both wallets, in order, too
  const funding = await accountEntries('funding:USD');
  for (const [i, row] of funding.entries()) t.is(row.seq, String(i + 1));
});

test.serial(
  'when a batch of holds from many wallets is posted, then each ledger account row is written once per batch, not once per entry',
  async (t) => {
    const wallets = Array.from({ length: 20 }, () => uuidv4());
    await post(wallets.map((w) => event('deposit', w, 1_000n)));
    // this backend's counts not yet flushed (pg_stat_xact_*), before and after ONE ledger_post call
    const stats = async () => {
      const { rows } = await ledger.query<{ relname: string; ins: string; upd: string }>(
        `select relname, n_tup_ins::text as ins, n_tup_upd::text as upd from pg_stat_xact_user_tables
          where relname in ('entries', 'ledger_accounts', 'journal_transactions')`,
      );
      return Object.fromEntries(rows.map((r) => [r.relname, { ins: Number(r.ins), upd: Number(r.upd) }]));
    };
    const settled = uuidv4();
    const batch = [
      ...wallets.map((w) => event('hold', w, 100n)),
      event('hold', wallets[0]!, 40n, settled),
      event('settle', wallets[0]!, 40n, settled),
    ];
    const written = await rolledBack(ledger, async () => {
      const before = await stats();
      await post(batch);
      const after = await stats();
      const delta = (table: string, field: 'ins' | 'upd') => (after[table]?.[field] ?? 0) - (before[table]?.[field] ?? 0);
      return Object.fromEntries(
        ['entries', 'ledger_accounts', 'journal_transactions'].map((table) => [
          table,
          { ins: delta(table, 'ins'), upd: delta(table, 'upd') },
        ]),
      );
    });
    // 22 journals, 44 entries; 20 wallets and in_transit:USD hold them, provider_clearing:USD takes the settle
    t.is(written.journal_transactions?.ins, 22);
    t.is(written.entries?.ins, 44);
    t.is(written.ledger_accounts?.upd, 22, 'one update per account touched (per entry it would be 44)');

    // posted for real, the chains run on without gaps across the batch
    await post(batch);
    const inTransit = await accountEntries('in_transit:USD');
    let running = 0n;
    let previousHash: Buffer | null = null;
    for (const [i, row] of inTransit.entries()) {
      t.is(row.seq, String(i + 1));
      t.is(BigInt(row.previous), running);
      running += BigInt(row.amount);
      t.is(BigInt(row.current), running);
      t.deepEqual(row.previous_hash, previousHash);
      previousHash = row.hash;
    }
    const { rows: account } = await ledger.query(
      `select balance_minor::text as balance, entry_count::text as n from ledger_accounts where code = 'in_transit:USD'`,
    );
    t.deepEqual(account[0], { balance: running.toString(), n: String(inTransit.length) });
    const first = await accountEntries(`wallet:${wallets[0]}`);
    t.deepEqual(
      first.map((r) => [r.seq, r.amount, r.current]),
      [
        ['1', '-1000', '-1000'],
        ['2', '100', '-900'],
        ['3', '40', '-860'],
      ],
    );
  },
);

test.serial('when a settle or reverse arrives before its hold, then the hold is posted first, and the late hold is a no-op', async (t) => {
  const accountId = uuidv4();
  await post([event('deposit', accountId, 1_000n)]);
  const settled = uuidv4();
  const [settle] = await post([event('settle', accountId, 300n, settled)]);
  t.like(settle, { kind: 'settle', posted: true });
  t.deepEqual(await entriesOf(settled), [
    { kind: 'hold', code: `wallet:${accountId}`, amount: '300' },
    { kind: 'hold', code: 'in_transit:USD', amount: '-300' },
    { kind: 'settle', code: 'in_transit:USD', amount: '300' },
    { kind: 'settle', code: 'provider_clearing:USD', amount: '-300' },
  ]);
  const [lateHold] = await post([event('hold', accountId, 300n, settled)]);
  t.like(lateHold, { kind: 'hold', posted: false });
  t.is((await entriesOf(settled)).length, 4);

  const reversed = uuidv4();
  await post([event('reverse', accountId, 200n, reversed)]);
  t.deepEqual(
    (await entriesOf(reversed)).map((e) => [e.kind, e.code, e.amount]),
    [
      ['hold', `wallet:${accountId}`, '200'],
      ['hold', 'in_transit:USD', '-200'],
      ['reverse', 'in_transit:USD', '200'],
      ['reverse', `wallet:${accountId}`, '-200'],
    ],
  );
  // the ledger holds no hold outbox event for holds posted on the way to a final state
  const { rows: outbox } = await ledger.query(`select count(*)::int as n from outbox where transaction_id = any($1::uuid[])`, [
    [settled, reversed],
  ]);
  t.is(outbox[0].n, 0);
  const { rows } = await ledger.query<{ code: string; balance: string }>(
    `select code, balance_minor::text as balance from ledger_accounts where code = any($1) order by code`,
    [[`wallet:${accountId}`]],
  );
  // deposit 1000 owed, 300 paid out, 200 held and returned: the platform owes 700
  t.deepEqual(rows, [{ code: `wallet:${accountId}`, balance: '-700' }]);
});

test.serial('when a hold is posted, then the ledger outbox announces it once', async (t) => {
  const accountId = uuidv4();
  const hold = event('hold', accountId, 50n);
  await post([hold]);
  await post([hold]);
  const { rows } = await ledger.query(`select topic, payload ->> 'transactionId' as tx from outbox where transaction_id = $1`, [
    hold.transactionId,
  ]);
  t.deepEqual(rows, [{ topic: 'ledger.held', tx: hold.transactionId }]);
});

test.serial('when everything above is posted, then the whole ledger balances per currency (trial balance)', async (t) => {
  await post([event('deposit', uuidv4(), 123n, uuidv4(), 'JPY'), event('deposit', uuidv4(), 77n, uuidv4(), 'EUR')]);
  const { rows } = await ledger.query(
    'select currency, sum(amount_minor)::text as total from entries group by currency having sum(amount_minor) <> 0',
  );
  t.deepEqual(rows, []);
  const { rows: accounts } = await ledger.query(
    `select a.code from ledger_accounts a
      where a.balance_minor <> coalesce((select sum(e.amount_minor) from entries e where e.ledger_account_id = a.id), 0)`,
  );
  t.deepEqual(accounts, []);
});

// ---------------------------------------------------------------- pg-mem (plain SQL only)

/**
 * The I1 CHECKs of the accounts table, extracted from the migration and evaluated by pg-mem: an
 * honest use of it, since they are plain arithmetic on one row (no trigger, no plpgsql, no
 * concurrency). Values stay below 2^53 because pg-mem computes bigint with JS numbers.
 */
test.serial("when any triple of balances is written, then the migration's accounts CHECKs accept exactly the I1 ones (pg-mem)", (t) => {
  const migration = readFileSync(sqlDir('balance', '0001_accounts_orders.sql'), 'utf8');
  const table = /create table accounts \(([\s\S]*?)\n\);/.exec(migration)?.[1];
  t.truthy(table, 'create table accounts not found in the migration');
  const lines = table!.split('\n').map((line) => line.trim().replace(/,$/, ''));
  const columns = lines.filter((line) => /^(balance|available|reserved)_minor /.test(line));
  const checks = lines.filter((line) => /^constraint accounts_(balance_split|available_nonnegative|reserved_nonnegative) check/.test(line));
  t.is(columns.length, 3);
  t.is(checks.length, 3);
  const mem = newDb();
  mem.public.none(`create table accounts (id integer primary key, ${[...columns, ...checks].join(', ')})`);
  let id = 0;
  const small = fc.integer({ min: -1_000_000_000, max: 1_000_000_000 });
  fc.assert(
    fc.property(small, small, fc.option(small, { nil: undefined }), (available, reserved, drift) => {
      const balanceMinor = available + reserved + (drift ?? 0);
      const legal = available >= 0 && reserved >= 0 && balanceMinor === available + reserved;
      id += 1;
      let accepted = true;
      try {
        mem.public.none(`insert into accounts (id, balance_minor, available_minor, reserved_minor)
                         values (${id}, ${balanceMinor}, ${available}, ${reserved})`);
      } catch {
        accepted = false;
      }
      return accepted === legal;
    }),
    { numRuns: 300 },
  );
  mem.public.none('insert into accounts (id, balance_minor, available_minor, reserved_minor) values (-1, 100, 100, 0)');
  t.throws(() => mem.public.none('update accounts set available_minor = -1, reserved_minor = 101 where id = -1'));
  t.throws(() => mem.public.none('update accounts set balance_minor = 99 where id = -1'));
  mem.public.none('update accounts set available_minor = 40, reserved_minor = 60 where id = -1');
  t.deepEqual(mem.public.many('select balance_minor, available_minor, reserved_minor from accounts where id = -1'), [
    { balance_minor: 100, available_minor: 40, reserved_minor: 60 },
  ]);
});
