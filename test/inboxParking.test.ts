// The callback inbox when one row cannot be applied (app/gateway/inboxDrain.ts): the batch it is in
// fails, so its rows are applied one by one; the others settle at once, the bad row keeps its error
// and attempt count, is retried after a backoff, and after INBOX_PARK_AFTER_ATTEMPTS it is parked
// (out of the queue) and an open break (inbox_parked) shows it to an operator.
import test from 'ava';
import { sql } from 'slonik';
import { z } from 'zod';
import { eventually, placeMany } from './helpers/asyncChecks.ts';
import { startTestSystem, type TestSystem } from './helpers/system.ts';

const PARK_AFTER = 3;
let system: TestSystem;

test.before(async () => {
  system = await startTestSystem({
    worker: true,
    cronItems: [],
    env: { INBOX_PARK_AFTER_ATTEMPTS: String(PARK_AFTER), INBOX_RETRY_BASE_MS: '100', INBOX_RETRY_MAX_MS: '200' },
  });
});
test.after.always(async () => {
  await system?.stop();
});

const InboxRow = z.object({
  attempts: z.number(),
  lastError: z.string().nullable(),
  parked: z.boolean(),
  processed: z.boolean(),
});

test.serial(
  'when one callback of a batch cannot be applied, then the others are applied, and the bad one is retried, then parked as a break with its error',
  async (t) => {
    const { balance } = system.db.databases;
    system.sim!.setKnobs({ dropCallbackRate: 1 });
    const { orders } = await placeMany(system, { userId: 'inbox-park', count: 5, amountMinor: 200n, fundMinor: 10_000n });
    await system.waitForOrders(
      orders.map((o) => o.orderId),
      ['processing'],
    );
    const bad = orders[2]!;
    // a row the database refuses (as a corrupt row or a bug in a function would make it)
    await balance.query(sql.unsafe`
      create function test_refuse_one_success() returns trigger language plpgsql as $$
      begin
        if new.status = 'success' and new.transaction_id = ${sql.literalValue(bad.transactionId)}::uuid then
          raise exception 'planted: this order refuses its callback';
        end if;
        return new;
      end $$`);
    await balance.query(sql.unsafe`
      create trigger test_refuse_one_success before update on withdraw_orders
        for each row execute function test_refuse_one_success()`);
    // the callbacks of all five arrive together: one batch
    await balance.query(sql.unsafe`
      insert into gateway_inbox (event_id, reference, status, occurred_at, payload, signed_at)
      select 'planted:' || tx, tx, 'paid', now(), '{}'::jsonb, now()
        from unnest(${sql.array(
          orders.map((o) => o.transactionId),
          'text',
        )}) as tx`);

    const good = orders.filter((o) => o !== bad);
    await system.waitForOrders(
      good.map((o) => o.orderId),
      ['success'],
    );
    const row = () =>
      balance.one(sql.type(InboxRow)`
        select attempts, last_error as "lastError", parked_at is not null as parked, processed_at is not null as processed
          from gateway_inbox where event_id = ${`planted:${bad.transactionId}`}`);
    await eventually(`the bad callback to be parked after ${PARK_AFTER} attempts`, async () => (await row()).parked);
    const parked = await row();
    t.is(parked.attempts, PARK_AFTER);
    t.false(parked.processed);
    t.regex(parked.lastError ?? '', /planted: this order refuses its callback/);

    const breaks = await balance.any(sql.type(z.object({ subject: z.string(), transactionId: z.string().nullable(), actual: z.string() }))`
      select subject, transaction_id as "transactionId", actual from reconciliation_breaks
       where category = 'inbox_parked' and resolved_at is null`);
    t.is(breaks.length, 1);
    t.is(breaks[0]!.transactionId, bad.transactionId);
    t.regex(breaks[0]!.actual, new RegExp(`failed ${PARK_AFTER} times: .*planted`));
    const status = await balance.oneFirst(sql.type(z.object({ status: z.string() }))`
      select status from withdraw_orders where id = ${bad.orderId}`);
    t.is(status, 'processing', 'the bad order keeps its money reserved for the operator');

    // a parked row stays out of the queue: callbacks after it flow, and it is not tried again
    await balance.query(sql.unsafe`drop trigger test_refuse_one_success on withdraw_orders`);
    const later = await placeMany(system, { userId: 'inbox-park-later', count: 1, amountMinor: 200n, fundMinor: 1_000n });
    await system.waitForOrders([later.orders[0]!.orderId], ['processing']);
    await balance.query(sql.unsafe`
      insert into gateway_inbox (event_id, reference, status, occurred_at, payload, signed_at)
      values (${`planted:${later.orders[0]!.transactionId}`}, ${later.orders[0]!.transactionId}, 'paid', now(), '{}', now())`);
    await system.waitForOrders([later.orders[0]!.orderId], ['success']);
    t.like(await row(), { attempts: PARK_AFTER, parked: true, processed: false });
  },
);
