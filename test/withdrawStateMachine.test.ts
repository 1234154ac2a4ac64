// The state machine has one table of moves in TypeScript (app/withdraw/withdrawStateMachine.ts) and
// one in SQL (withdraw_transitions, enforced by the withdraw_orders_guard trigger; the two tables are
// compared in databaseInvariants.test.ts). The statuses and the two definitions of the open statuses
// must agree with them too.
import test from 'ava';
import { NEXT, OPEN_STATUSES, WITHDRAW_STATUSES, canTransition, isTerminal } from '../app/withdraw/withdrawStateMachine.ts';
import { createTestDatabases, type TestDatabases } from './helpers/testDatabases.ts';

let db: TestDatabases;
test.before(async () => {
  db = await createTestDatabases();
});
test.after.always(async () => {
  await db?.drop();
});

test('when the status constraint is read, then it allows exactly the TypeScript statuses', async (t) => {
  const client = await db.client('balance');
  const { rows } = await client.query<{ def: string }>(
    `select pg_get_constraintdef(oid) as def from pg_constraint where conname = 'withdraw_orders_status_known'`,
  );
  const allowed = [...(rows[0]?.def ?? '').matchAll(/'(\w+)'::text/g)].map((m) => m[1]).sort();
  t.deepEqual(allowed, [...WITHDRAW_STATUSES].sort());
});

test('when the open statuses are asked of SQL, then they are the statuses with a way out, as in TypeScript', async (t) => {
  const client = await db.client('balance');
  const fromSql = (await client.query<{ s: string[] }>('select withdraw_open_statuses() as s')).rows[0]!.s;
  const withWayOut = (await client.query<{ s: string }>('select distinct from_status as s from withdraw_transitions')).rows.map((r) => r.s);
  t.deepEqual([...fromSql].sort(), [...OPEN_STATUSES].sort());
  t.deepEqual([...withWayOut].sort(), [...OPEN_STATUSES].sort());
  t.deepEqual(
    WITHDRAW_STATUSES.filter((s) => isTerminal(s)),
    ['success', 'failed'],
  );
});

test('when a move is asked of the state machine, then only table moves are allowed and final states stay final', (t) => {
  for (const from of WITHDRAW_STATUSES) {
    for (const to of WITHDRAW_STATUSES) t.is(canTransition(from, to), NEXT[from].includes(to), `${from} -> ${to}`);
  }
  t.false(canTransition('success', 'failed'));
  t.false(canTransition('failed', 'success'));
  t.false(canTransition('processing', 'init'));
});
