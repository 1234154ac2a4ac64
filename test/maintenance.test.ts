import test from 'ava';
import { sql } from 'slonik';
import { v4 as uuidv4 } from 'uuid';
import { z } from 'zod';
import { postLedgerEvents } from '../app/ledger/ledgerPosting.ts';
import { pruneRelayedOutbox } from '../app/outbox/relays.ts';
import { pruneIdempotencyKeys } from '../jobs/tasks.ts';
import { call } from './helpers/http.ts';
import { startTestSystem, type TestSystem } from './helpers/system.ts';

let system: TestSystem;
test.before(async () => {
  system = await startTestSystem();
});
test.after.always(async () => {
  await system?.stop();
});

const count = z.object({ n: z.number() });

test.serial('when idempotency keys pass their retention, then pruning deletes them and keeps the recent ones', async (t) => {
  await system.fundedAccount('pruner', '10.00');
  const token = await system.userToken('pruner');
  for (let i = 0; i < 3; i += 1) t.is((await system.withdraw(token, { toAccountId: 'b', amount: '1.00' })).status, 202);
  const db = system.db.databases.balance;
  await db.query(sql.unsafe`
    update idempotency_keys set created_at = now() - interval '49 hours'
     where ctid in (select ctid from idempotency_keys where user_id = 'pruner' limit 2)`);
  const deleted = await pruneIdempotencyKeys(db, 48, 1);
  t.is(deleted, 1, 'bounded by the batch size');
  t.is(await pruneIdempotencyKeys(db, 48, 100), 1);
  t.is(await db.oneFirst(sql.type(count)`select count(*)::int as n from idempotency_keys where user_id = 'pruner'`), 1);
  // retention below 24 h is never honoured: keys are kept at least 24 hours (contract)
  await db.query(sql.unsafe`update idempotency_keys set created_at = now() - interval '10 hours' where user_id = 'pruner'`);
  t.is(await pruneIdempotencyKeys(db, 1, 100), 0);
});

test.serial('when relayed outbox rows pass their retention, then pruning deletes only those', async (t) => {
  const db = system.db.databases.balance;
  await db.query(
    sql.unsafe`update outbox set relayed_at = now() - interval '100 hours' where id in (select id from outbox order by id limit 2)`,
  );
  const unrelayedBefore = await db.oneFirst(sql.type(count)`select count(*)::int as n from outbox where relayed_at is null`);
  t.is(await pruneRelayedOutbox(db, 72, 100), 2);
  t.is(await db.oneFirst(sql.type(count)`select count(*)::int as n from outbox where relayed_at is null`), unrelayedBefore);
});

test('when a settle does not match its hold, then the ledger refuses the whole batch', async (t) => {
  const accountId = uuidv4();
  const transactionId = uuidv4();
  const event = (outboxId: number, topic: 'withdraw.created' | 'withdraw.success', amountMinor: string) => ({
    outboxId,
    topic,
    transactionId,
    payload: { transactionId, accountId, amountMinor, currency: 'USD' as const },
  });
  await postLedgerEvents(system.db.databases.ledger, [event(1, 'withdraw.created', '500')]);
  const error = await t.throwsAsync(postLedgerEvents(system.db.databases.ledger, [event(2, 'withdraw.success', '400')]));
  t.is((error as Error & { constraint?: string }).constraint, 'ledger_release_matches_hold');
  const kinds = await system.db.databases.ledger.anyFirst(sql.type(z.object({ kind: z.string() }))`
    select kind from journal_transactions where transaction_id = ${transactionId}`);
  t.deepEqual(kinds, ['hold']);
  await postLedgerEvents(system.db.databases.ledger, [event(3, 'withdraw.success', '500')]);
  t.pass();
});

test('when a body is not JSON and no token is given, then authentication is judged first (401)', async (t) => {
  const reply = await call(system.url, 'POST', '/withdraw', {
    rawBody: '{not json',
    headers: { 'idempotent-key': '0190a0d2-5f0e-7c3a-8b1e-1234567890ab' },
  });
  t.is(reply.status, 401);
  const token = await system.userToken('someone');
  const withToken = await call(system.url, 'POST', '/withdraw', {
    token,
    rawBody: '{not json',
    headers: { 'idempotent-key': '0190a0d2-5f0e-7c3a-8b1e-1234567890ab' },
  });
  t.is(withToken.status, 400);
  t.is(withToken.body.code, 40001);
});
