import test from 'ava';
import { sql } from 'slonik';
import { v4 as uuidv4, v7 as uuidv7 } from 'uuid';
import { z } from 'zod';
import { postLedgerEvents } from '../app/ledger/ledgerPosting.ts';
import { pruneRelayedOutbox } from '../jobs/pruning.ts';
import { createAccountDirectory } from '../app/balance/accountDirectory.ts';
import { createWithdrawService } from '../app/withdraw/withdrawService.ts';
import { parsedCronItems } from '../jobs/crontab.ts';
import {
  DESIGN_WITHDRAWALS_PER_DAY,
  PRUNED_TABLES,
  pruneGatewayInbox,
  pruneIdempotencyKeys,
  ROWS_PER_WITHDRAWAL_MAX,
  runPruning,
} from '../jobs/pruning.ts';
import { call } from './helpers/http.ts';
import { startTestSystem, testConfig, type TestSystem } from './helpers/system.ts';

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
  // two keys made 47 hours ago, first used 49 hours ago (as if), and one made and used now
  const old = [uuidv7({ msecs: Date.now() - 47 * 3_600_000 }), uuidv7({ msecs: Date.now() - 47 * 3_600_000 + 1 })];
  for (const key of [...old, uuidv7()]) t.is((await system.withdraw(token, { toAccountId: 'b', amount: '1.00' }, key)).status, 202);
  const db = system.db.databases.balance;
  await db.query(sql.unsafe`
    update idempotency_keys set created_at = now() - interval '49 hours' where idempotency_key = any(${sql.array(old, 'uuid')})`);
  // a key is pruned once its first use AND the time inside it (a UUIDv7) are past the retention
  t.is(await pruneIdempotencyKeys(db, 48, 100), 0, 'the keys themselves were made 47 hours ago');
  const later = new Date(Date.now() + 1.5 * 3_600_000);
  const deleted = await pruneIdempotencyKeys(db, 48, 1, later);
  t.is(deleted, 1, 'bounded by the batch size');
  t.is(await pruneIdempotencyKeys(db, 48, 100, later), 1);
  t.is(await db.oneFirst(sql.type(count)`select count(*)::int as n from idempotency_keys where user_id = 'pruner'`), 1);
  // retention below 24 h is never honoured: keys are kept at least 24 hours (contract)
  await db.query(sql.unsafe`update idempotency_keys set created_at = now() - interval '10 hours' where user_id = 'pruner'`);
  t.is(await pruneIdempotencyKeys(db, 1, 100, new Date(Date.now() + 12 * 3_600_000)), 0);
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
  // the settle that matches its hold is posted, once the refused one is out of the way
  const posted = await postLedgerEvents(system.db.databases.ledger, [event(3, 'withdraw.success', '500')]);
  t.deepEqual(
    posted.map((row) => [row.kind, row.posted]),
    [['settle', true]],
  );
  const after = await system.db.databases.ledger.anyFirst(sql.type(z.object({ kind: z.string() }))`
    select kind from journal_transactions where transaction_id = ${transactionId} order by id`);
  t.deepEqual(after, ['hold', 'settle']);
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

// ---------------------------------------------------------------------------------------------
// housekeeping at the design load (jobs/pruning.ts)

const HOUR_MS = 3_600_000;

test.serial(
  'when applied callbacks pass their retention, then pruning deletes them, and keeps unapplied ones and those of open orders',
  async (t) => {
    const db = system.db.databases.balance;
    const accountId = await system.fundedAccount('inbox-pruner', '10.00');
    const token = await system.userToken('inbox-pruner');
    const open = await system.withdraw(token, { fromAccountId: accountId, toAccountId: 'b', amount: '1.00' });
    t.is(open.status, 202);
    const openTx = open.body.data.transactionId as string;
    const insert = (eventId: string, reference: string, processedHoursAgo: number | null) =>
      db.query(sql.unsafe`
      insert into gateway_inbox (event_id, reference, status, occurred_at, payload, signed_at, processed_at, outcome)
      values (${eventId}, ${reference}, 'paid', now(), '{}', now(),
              ${processedHoursAgo === null ? null : new Date(Date.now() - processedHoursAgo * HOUR_MS).toISOString()},
              ${processedHoursAgo === null ? null : 'unknown_reference'})`);
    await insert('prune-old-1', uuidv4(), 200);
    await insert('prune-old-2', 'not-a-uuid', 169);
    await insert('prune-recent', uuidv4(), 10);
    await insert('prune-pending', uuidv4(), null);
    await insert('prune-open-order', openTx, 500);
    const deleted = await pruneGatewayInbox(db, 168, 100);
    t.is(deleted, 2);
    const left = await db.anyFirst(sql.type(z.object({ eventId: z.string() }))`
    select event_id as "eventId" from gateway_inbox where event_id like 'prune-%' order by event_id`);
    t.deepEqual(left, ['prune-open-order', 'prune-pending', 'prune-recent']);
  },
);

test.serial(
  'when a pruning run meets more than its bound, then it deletes the bound per table in batches and the next run goes on',
  async (t) => {
    const { balance, ledger } = system.db.databases;
    await balance.query(sql.unsafe`
    insert into outbox (topic, transaction_id, payload, created_at, relayed_at)
    select 'withdraw.success', gen_random_uuid(), '{}', now() - interval '100 hours', now() - interval '99 hours'
      from generate_series(1, 2500)`);
    await ledger.query(sql.unsafe`
    insert into outbox (topic, transaction_id, payload, created_at, relayed_at)
    select 'ledger.held', gen_random_uuid(), '{}', now() - interval '100 hours', now() - interval '99 hours'
      from generate_series(1, 700)`);
    const config = testConfig(system.db, { PRUNE_ROWS_PER_RUN_MAX: '1000', PRUNE_BATCH_SIZE_MAX: '300' });
    const first = await runPruning({ databases: system.db.databases, config });
    t.like(first, { balance_outbox: 1000, ledger_outbox: 700 });
    t.like(await runPruning({ databases: system.db.databases, config }), { balance_outbox: 1000, ledger_outbox: 0 });
    t.like(await runPruning({ databases: system.db.databases, config }), { balance_outbox: 500 });
    t.like(await runPruning({ databases: system.db.databases, config }), { balance_outbox: 0 });
  },
);

test('when the crontab and the default bounds are read, then pruning drains every table at least five times faster than the design load fills it', (t) => {
  const item = parsedCronItems().find((c) => c.task === 'maintenance__prune');
  t.truthy(item, 'one pruning job for every table');
  let runsPerDay = 0;
  for (let hour = 0; hour < 24; hour += 1)
    for (let min = 0; min < 60; min += 1) if (item!.match({ min, hour, date: 1, month: 1, dow: 1 })) runsPerDay += 1;
  const config = testConfig(system.db);
  const drainedPerDay = runsPerDay * config.maintenance.pruneRowsPerRunMax;
  for (const table of PRUNED_TABLES) {
    const filledPerDay = DESIGN_WITHDRAWALS_PER_DAY * ROWS_PER_WITHDRAWAL_MAX[table];
    t.true(drainedPerDay >= 5 * filledPerDay, `${table}: ${drainedPerDay} a day drained, ${filledPerDay} added`);
  }
  t.is(item!.options.queueName, 'maintenance_prune', 'never two runs at once');
});

/** a UUIDv7 whose time is `ageMs` ago */
const keyMadeAgo = (ageMs: number) => uuidv7({ msecs: Date.now() - ageMs });

test.serial(
  'when an idempotency key is older than the retention and has no stored reply, then 422 42206 and nothing is written',
  async (t) => {
    const db = system.db.databases.balance;
    const accountId = await system.fundedAccount('key-expiry', '10.00');
    const token = await system.userToken('key-expiry');
    const ordersBefore = await db.oneFirst(sql.type(count)`select count(*)::int as n from withdraw_orders where account_id = ${accountId}`);
    const stale = await system.withdraw(token, { toAccountId: 'b', amount: '1.00' }, keyMadeAgo(49 * HOUR_MS));
    t.is(stale.status, 422, stale.text);
    t.is(stale.body.code, 42206);
    t.regex(stale.body.msg, /use a new key/);
    t.is(await db.oneFirst(sql.type(count)`select count(*)::int as n from withdraw_orders where account_id = ${accountId}`), ordersBefore);
    const fresh = await system.withdraw(token, { toAccountId: 'b', amount: '1.00' }, keyMadeAgo(47 * HOUR_MS));
    t.is(fresh.status, 202, 'within the retention a key is a key');
  },
);

test.serial(
  'when an expired key still has its stored reply, then it replays; pruning never deletes a key that is still accepted',
  async (t) => {
    const db = system.db.databases.balance;
    await system.fundedAccount('key-replay', '10.00');
    const accounts = createAccountDirectory(db, { factsSizeMax: 100, userListTtlMs: 1 });
    let nowMs = Date.now();
    const service = createWithdrawService({
      db,
      accounts,
      settings: { cacheSizeMax: 0, cacheTtlMs: 1, keyRetentionHours: 48, nowMs: () => nowMs },
    });
    const key = keyMadeAgo(47 * HOUR_MS);
    const request = { toAccountId: 'b', amount: '1.00' };
    const first = await service.requestWithdraw({ userId: 'key-replay', idempotencyKey: key, request });
    t.is(first.status, 202);
    nowMs += 2 * HOUR_MS; // the key is now 49 hours old, its reply still stored
    const replay = await service.requestWithdraw({ userId: 'key-replay', idempotencyKey: key, request });
    t.deepEqual(replay, { ...first, replayed: true });
    await t.throwsAsync(service.requestWithdraw({ userId: 'key-replay', idempotencyKey: key, request: { ...request, amount: '2.00' } }), {
      message: /different request/,
    });

    // a row first used long ago under a key whose time is recent (a client clock ahead of ours)
    const ahead = keyMadeAgo(-HOUR_MS);
    await db.query(sql.unsafe`
    insert into idempotency_keys (user_id, idempotency_key, request_hash, response_status, response_body, created_at)
    values ('key-replay', ${ahead}, 'x', 202, '{}', now() - interval '60 hours')`);
    await pruneIdempotencyKeys(db, 48, 1_000);
    t.is(await db.oneFirst(sql.type(count)`select count(*)::int as n from idempotency_keys where idempotency_key = ${ahead}`), 1);
    t.is(await db.oneFirst(sql.type(count)`select count(*)::int as n from idempotency_keys where idempotency_key = ${key}`), 1);
  },
);
