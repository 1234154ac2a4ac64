import test from 'ava';
import { sql } from 'slonik';
import { v4 as uuidv4 } from 'uuid';
import { z } from 'zod';
import { createInboxWriter } from '../app/gateway/inboxWriter.ts';
import { createTestDatabases, type TestDatabases } from './helpers/testDatabases.ts';

let db: TestDatabases;
test.before(async () => {
  db = await createTestDatabases();
});
test.after.always(async () => {
  await db?.drop();
});

const event = (eventId: string, reference = uuidv4()) => ({
  eventId,
  reference,
  status: 'paid' as const,
  failureCode: null,
  occurredAt: new Date().toISOString(),
  payload: { eventId, reference },
  signedAtSec: Math.floor(Date.now() / 1000),
});

test('when callbacks arrive together, then each event id is stored once and exactly one of its requests is told "stored"', async (t) => {
  const writer = createInboxWriter(db.databases.balance, 7);
  const ids = Array.from({ length: 40 }, () => `evt-${uuidv4()}`);
  // every id sent three times, all at once: batches of 7 hold duplicates within and across batches
  const requests = [...ids, ...ids, ...ids].map((id) => ({ id, stored: writer.store(event(id)) }));
  const answers = await Promise.all(requests.map(async (r) => ({ id: r.id, stored: await r.stored })));
  for (const id of ids) t.is(answers.filter((a) => a.id === id && a.stored).length, 1, id);
  const rows = await db.databases.balance.oneFirst(sql.type(z.object({ n: z.number() }))`
    select count(*)::int as n from gateway_inbox where event_id = any(${sql.array(ids, 'text')})`);
  t.is(rows, ids.length);
  // later duplicates are duplicates too
  t.false(await writer.store(event(ids[0]!)));
});

test('when one row of a batch cannot be stored, then only its request fails and the others are stored', async (t) => {
  const writer = createInboxWriter(db.databases.balance, 50);
  const good = Array.from({ length: 5 }, () => `good-${uuidv4()}`);
  const bad = { ...event(`bad-${uuidv4()}`), occurredAt: 'not a timestamp' };
  const results = await Promise.allSettled([...good.map((id) => writer.store(event(id))), writer.store(bad)]);
  t.deepEqual(
    results.slice(0, 5).map((r) => r.status),
    ['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled'],
  );
  t.is(results[5]!.status, 'rejected');
  const rows = await db.databases.balance.oneFirst(sql.type(z.object({ n: z.number() }))`
    select count(*)::int as n from gateway_inbox where event_id = any(${sql.array(good, 'text')})`);
  t.is(rows, 5);
});
