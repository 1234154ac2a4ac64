// POST /withdraw/notify through the real web process: only a callback signed with our secret,
// over the exact bytes, within 300 s, is stored; anything else is 401 40101 and stores nothing.
import { randomUUID } from 'node:crypto';
import test from 'ava';
import { sql } from 'slonik';
import { z } from 'zod';
import { signWebhook } from '../app/gateway/webhookSignature.ts';
import { countRows, sendCallback } from './helpers/asyncChecks.ts';
import { startTestSystem, TEST_SECRETS, type TestSystem } from './helpers/system.ts';

let system: TestSystem;
test.before(async () => {
  system = await startTestSystem();
});
test.after.always(async () => {
  await system?.stop();
});

const nowSec = () => Math.floor(Date.now() / 1000);

function callbackBody(overrides: Record<string, unknown> = {}): string {
  return JSON.stringify({
    eventId: `evt-${randomUUID()}`,
    reference: randomUUID(),
    status: 'paid',
    occurredAt: new Date().toISOString(),
    ...overrides,
  });
}

async function inboxRows(): Promise<number> {
  return countRows(system.db.databases.balance, 'gateway_inbox');
}

async function rowsFor(eventId: string): Promise<number> {
  return system.db.databases.balance.oneFirst(sql.type(z.object({ n: z.number() }))`
    select count(*)::int as n from gateway_inbox where event_id = ${eventId}`);
}

// Every test is serial, so "nothing stored" can be checked as an unchanged row count.
const rejected: Array<[string, () => { body: string; header: string | null }]> = [
  [
    'signed with another secret',
    () => {
      const body = callbackBody();
      return { body, header: signWebhook('not-the-webhook-secret-0123456789', body, nowSec()) };
    },
  ],
  [
    'with the body changed after signing',
    () => {
      const body = callbackBody();
      const header = signWebhook(TEST_SECRETS.PSP_WEBHOOK_SECRET, body, nowSec());
      return { body: body.replace('"paid"', '"failed"'), header };
    },
  ],
  [
    'signed more than 300 s ago',
    () => {
      const body = callbackBody();
      return { body, header: signWebhook(TEST_SECRETS.PSP_WEBHOOK_SECRET, body, nowSec() - 301 - 5) };
    },
  ],
  [
    'signed more than 300 s in the future',
    () => {
      const body = callbackBody();
      return { body, header: signWebhook(TEST_SECRETS.PSP_WEBHOOK_SECRET, body, nowSec() + 301 + 5) };
    },
  ],
  ['without the X-Signature header', () => ({ body: callbackBody(), header: null })],
  ['with a malformed header (no v1)', () => ({ body: callbackBody(), header: `t=${nowSec()}` })],
  ['with a malformed header (not hex)', () => ({ body: callbackBody(), header: `t=${nowSec()},v1=${'z'.repeat(64)}` })],
  ['with a malformed header (garbage)', () => ({ body: callbackBody(), header: 'garbage' })],
  [
    'with the timestamp changed after signing',
    () => {
      const body = callbackBody();
      const header = signWebhook(TEST_SECRETS.PSP_WEBHOOK_SECRET, body, nowSec() - 10).replace(/^t=\d+/, `t=${nowSec()}`);
      return { body, header };
    },
  ],
];

for (const [name, make] of rejected) {
  test.serial(`when a callback arrives ${name}, then 401 40101 and nothing is stored`, async (t) => {
    const before = await inboxRows();
    const { body, header } = make();
    const eventId = (JSON.parse(body) as { eventId: string }).eventId;
    const reply = await sendCallback(system.url, body, { header });
    t.is(reply.status, 401, reply.text);
    t.is(reply.body.code, 40101);
    t.is(reply.body.data, null);
    t.is(await rowsFor(eventId), 0);
    t.is(await inboxRows(), before);
  });
}

test.serial('when a valid callback arrives, then 200 stored; the same eventId again is 200 duplicate and still one row', async (t) => {
  const before = await inboxRows();
  const body = callbackBody({ status: 'failed', failureCode: 'beneficiary_bank_rejected' });
  const eventId = (JSON.parse(body) as { eventId: string }).eventId;
  const first = await sendCallback(system.url, body);
  t.is(first.status, 200, first.text);
  t.like(first.body, { code: 0, msg: 'stored', data: { eventId } });
  t.is(await rowsFor(eventId), 1);
  const stored = await system.db.databases.balance.one(
    sql.type(
      z.object({
        reference: z.string(),
        status: z.string(),
        failureCode: z.string().nullable(),
        processedAt: z.number().nullable(),
      }),
    )`select reference, status, failure_code as "failureCode", processed_at as "processedAt" from gateway_inbox where event_id = ${eventId}`,
  );
  t.like(stored, { status: 'failed', failureCode: 'beneficiary_bank_rejected', processedAt: null });

  // a redelivery signed later (the provider re-signs each attempt), and a byte-identical replay
  const again = await sendCallback(system.url, body, { timestampSec: nowSec() - 1 });
  t.is(again.status, 200, again.text);
  t.like(again.body, { code: 0, msg: 'duplicate', data: { eventId } });
  const replay = await sendCallback(system.url, body);
  t.like(replay.body, { code: 0, msg: 'duplicate' });
  // the same eventId with different content is still the same event: nothing changes
  const changed = JSON.stringify({ ...(JSON.parse(body) as object), status: 'paid' });
  const conflicting = await sendCallback(system.url, changed);
  t.is(conflicting.status, 200);
  t.is(conflicting.body.msg, 'duplicate');
  t.is(await rowsFor(eventId), 1);
  t.is(
    await system.db.databases.balance.oneFirst(sql.type(z.object({ status: z.string() }))`
    select status from gateway_inbox where event_id = ${eventId}`),
    'failed',
  );
  t.is(await inboxRows(), before + 1);
});

test.serial('when a callback carries two v1 signatures (provider rotating) and the second is ours, then it is accepted', async (t) => {
  const body = callbackBody();
  const eventId = (JSON.parse(body) as { eventId: string }).eventId;
  const ts = nowSec();
  const v1 = (secret: string) => signWebhook(secret, body, ts).split(',')[1]!;
  const header = `t=${ts},${v1('new-provider-secret-0123456789')},${v1(TEST_SECRETS.PSP_WEBHOOK_SECRET)}`;
  const reply = await sendCallback(system.url, body, { header });
  t.is(reply.status, 200, reply.text);
  t.is(await rowsFor(eventId), 1);
});

const invalidBodies: Array<[string, string]> = [
  ['an unknown status', callbackBody({ status: 'pending' })],
  ['no eventId', JSON.stringify({ reference: randomUUID(), status: 'paid', occurredAt: new Date().toISOString() })],
  ['an eventId with spaces', callbackBody({ eventId: 'evt with spaces' })],
  ['a bad occurredAt', callbackBody({ occurredAt: 'yesterday' })],
  ['an empty reference', callbackBody({ reference: '' })],
  ['not JSON at all', 'status=paid&reference=x'],
  ['a JSON array', '[1,2,3]'],
];

for (const [name, body] of invalidBodies) {
  test.serial(`when a validly signed callback has ${name}, then 400 40001 and nothing is stored`, async (t) => {
    const before = await inboxRows();
    const reply = await sendCallback(system.url, body);
    t.is(reply.status, 400, reply.text);
    t.is(reply.body.code, 40001);
    // no row carries this body's eventId (when it has one), and no row appeared for it
    let eventId: unknown;
    try {
      eventId = (JSON.parse(body) as { eventId?: unknown }).eventId;
    } catch {
      eventId = undefined;
    }
    if (typeof eventId === 'string') t.is(await rowsFor(eventId), 0);
    t.is(await inboxRows(), before);
  });
}
