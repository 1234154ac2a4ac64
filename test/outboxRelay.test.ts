// The outbox relays and their consumers: at-least-once delivery must still give exactly one
// journal per (transactionId, kind); concurrent relays never enqueue a row twice; and when
// notifications are lost, the sweep still relays everything.
import { randomUUID } from 'node:crypto';
import test from 'ava';
import { runOnce } from 'graphile-worker';
import pg from 'pg';
import { sql } from 'slonik';
import { v7 as uuidv7 } from 'uuid';
import { z } from 'zod';
import { createGatewayService } from '../app/gateway/gatewayService.ts';
import type { PspAdapter } from '../app/gateway/pspAdapter.ts';
import { postLedgerEvents, type RelayedEvent } from '../app/ledger/ledgerPosting.ts';
import { createLogger } from '../app/logger.ts';
import { createDrainer } from '../app/outbox/drainer.ts';
import { createWebhookSender } from '../app/webhooks/webhookDelivery.ts';
import { buildTaskList } from '../jobs/tasks.ts';
import { graphileLogger } from '../jobs/workerApp.ts';
import { allInvariants, crossDatabaseInvariants, ledgerInvariants } from '../reconcile/invariants.ts';
import { eventually, ordersById, placeMany, sendCallback } from './helpers/asyncChecks.ts';
import { waitForQuiescence } from './helpers/quiescence.ts';
import { startTestSystem, type TestSystem } from './helpers/system.ts';
import { createTestDatabases, type TestDatabases } from './helpers/testDatabases.ts';

const logger = createLogger({ level: 'silent', name: 'test-outbox' });

/** a Ledger DB of its own for the posting tests */
let ledgerOnly: TestDatabases;
/** web only: the outbox fills and nothing relays it but the test */
let quiet: TestSystem;
/** a worker that never polls and has no crons: only NOTIFY (or a sweep the test adds) wakes its relays */
let deaf: TestSystem;
/** what deaf's web and worker log at warn and above, one JSON line each */
const deafLog: string[] = [];

test.before(async () => {
  ledgerOnly = await createTestDatabases();
  quiet = await startTestSystem();
  deaf = await startTestSystem({
    worker: true,
    env: { RELAY_POLL_INTERVAL_MS: '600000' },
    cronItems: [],
    logSink: (line) => deafLog.push(line),
  });
});
test.after.always(async () => {
  await deaf?.stop();
  await quiet?.stop();
  await ledgerOnly?.drop();
});

// ---------------------------------------------------------------------------------------------
// ledger__post's logic delivered many times

function events(accountId: string, outboxIdBase: number) {
  const credit = randomUUID();
  const [held, settled, reversed, settledOutOfOrder] = [uuidv7(), uuidv7(), uuidv7(), uuidv7()];
  const event = (outboxId: number, topic: RelayedEvent['topic'], transactionId: string, amountMinor: string): RelayedEvent => ({
    outboxId: outboxIdBase + outboxId,
    topic,
    transactionId,
    payload: { transactionId, accountId, amountMinor, currency: 'USD' },
  });
  return [
    event(1, 'account.credited', credit, '100000'),
    event(2, 'withdraw.created', held, '1000'),
    event(3, 'withdraw.created', settled, '2000'),
    event(4, 'withdraw.success', settled, '2000'),
    event(5, 'withdraw.created', reversed, '3000'),
    event(6, 'withdraw.failed', reversed, '3000'),
    // a settle relayed before its hold: the hold is posted with it, and the later hold is a no-op
    event(7, 'withdraw.success', settledOutOfOrder, '4000'),
    event(8, 'withdraw.created', settledOutOfOrder, '4000'),
  ];
}

const EntryRow = z.object({ id: z.bigint(), journalId: z.bigint(), amountMinor: z.bigint(), hash: z.string() });

async function ledgerState(ledger: TestDatabases['databases']['ledger']) {
  const journals = await ledger.any(sql.type(z.object({ transactionId: z.string(), kind: z.string(), id: z.bigint() }))`
    select transaction_id as "transactionId", kind, id from journal_transactions order by id`);
  const entries = await ledger.any(sql.type(EntryRow)`
    select id, journal_id as "journalId", amount_minor as "amountMinor", encode(hash, 'hex') as hash from entries order by id`);
  const accounts = await ledger.any(sql.type(z.object({ code: z.string(), balanceMinor: z.bigint(), entryCount: z.bigint() }))`
    select code, balance_minor as "balanceMinor", entry_count as "entryCount" from ledger_accounts order by id`);
  const held = await ledger.anyFirst(sql.type(z.object({ transactionId: z.string() }))`
    select transaction_id as "transactionId" from outbox where topic = 'ledger.held' order by id`);
  return { journals, entries, accounts, held };
}

test.serial(
  'when the same ledger events are posted five times in a row, then one journal per (transactionId, kind) and nothing changes after the first',
  async (t) => {
    const ledger = ledgerOnly.databases.ledger;
    const batch = events(randomUUID(), 1_000);
    const first = await postLedgerEvents(ledger, batch);
    t.deepEqual(
      first.map((row) => [row.kind, row.posted]),
      [
        ['deposit', true],
        ['hold', true],
        ['hold', true],
        ['settle', true],
        ['hold', true],
        ['reverse', true],
        ['settle', true],
        ['hold', false],
      ],
    );
    const after = await ledgerState(ledger);
    for (let round = 2; round <= 5; round += 1) {
      const again = await postLedgerEvents(ledger, batch);
      t.true(
        again.every((row) => !row.posted),
        `round ${round} posted nothing`,
      );
      t.deepEqual(
        again.map((row) => row.journalId),
        first.map((row) => row.journalId),
        'and names the journals of the first',
      );
    }
    t.deepEqual(await ledgerState(ledger), after);
    const kinds = after.journals.map((j) => `${j.transactionId}:${j.kind}`);
    t.is(new Set(kinds).size, kinds.length);
    t.is(after.journals.length, 8, 'deposit, 4 holds, 2 settles, 1 reverse');
    t.is(after.entries.length, 16);
    // ledger.held once per hold posted by a hold event (the out-of-order one came with its settle)
    t.is(after.held.length, 3);
    t.deepEqual(await ledgerInvariants(ledger), []);
  },
);

test.serial('when the same ledger events are posted by five callers at once, then exactly one of them posts each journal', async (t) => {
  const ledger = ledgerOnly.databases.ledger;
  const before = await ledgerState(ledger);
  const batch = events(randomUUID(), 2_000);
  const results = await Promise.all(Array.from({ length: 5 }, () => postLedgerEvents(ledger, batch)));
  const postedBy = new Map<string, number>();
  for (const rows of results) {
    for (const row of rows) {
      if (row.posted) postedBy.set(`${row.transactionId}:${row.kind}`, (postedBy.get(`${row.transactionId}:${row.kind}`) ?? 0) + 1);
    }
  }
  t.is(postedBy.size, 7);
  t.true(
    [...postedBy.values()].every((n) => n === 1),
    JSON.stringify([...postedBy]),
  );
  const after = await ledgerState(ledger);
  t.is(after.journals.length - before.journals.length, 8);
  t.is(after.entries.length - before.entries.length, 16);
  t.is(after.held.length - before.held.length, 3);
  // a sixth delivery later changes nothing
  await postLedgerEvents(ledger, batch);
  t.deepEqual(await ledgerState(ledger), after);
  t.deepEqual(await ledgerInvariants(ledger), []);
});

// ---------------------------------------------------------------------------------------------
// the Balance relay, from several connections at once, and the jobs it enqueues run with runOnce

const LEDGER_TOPICS = ['withdraw.created', 'withdraw.success', 'withdraw.failed', 'account.credited'];

async function ledgerPostJobEvents(balance: TestSystem['db']['databases']['balance']) {
  const payloads = await balance.anyFirst(sql.type(
    z.object({ payload: z.object({ events: z.array(z.object({ outboxId: z.number() })) }) }),
  )`
    select j.payload from graphile_worker._private_jobs j join graphile_worker._private_tasks k on k.id = j.task_id
     where k.identifier = 'ledger__post'`);
  return payloads.flatMap((p) => p.events.map((e) => e.outboxId));
}

const RELAY_WAIT_MS = 20_000;

async function relayUntilEmpty(client: pg.Client, batchSize: number): Promise<number> {
  const deadline = Date.now() + RELAY_WAIT_MS;
  let total = 0;
  for (;;) {
    const { rows } = await client.query<{ n: number }>('select outbox_relay_balance($1) as n', [batchSize]);
    total += rows[0]!.n;
    if (rows[0]!.n > 0) continue;
    // nothing claimable: done, unless another connection still holds rows it has not committed
    const left = await client.query<{ n: number }>('select count(*)::int as n from outbox where relayed_at is null');
    if (left.rows[0]!.n === 0) return total;
    if (Date.now() > deadline) throw new Error(`waited ${RELAY_WAIT_MS} ms for the other relays to commit ${left.rows[0]!.n} rows`);
    // another connection holds claimed rows until it commits: a short spin until it does
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

test.serial(
  'when eight connections relay the Balance outbox at once, then every row is enqueued exactly once, and runOnce posts each once',
  async (t) => {
    const { balance, ledger } = quiet.db.databases;
    // real withdrawals (account.credited + withdraw.created), and rows of topics the ledger ignores
    for (let user = 0; user < 3; user += 1) await placeMany(quiet, { userId: `relay-${user}`, count: 40, amountMinor: 123n });
    await balance.query(sql.unsafe`
    insert into outbox (topic, transaction_id, payload)
    select 'withdraw.processing', gen_random_uuid(), '{}'::jsonb from generate_series(1, 1500)`);
    const rows = await balance.oneFirst(
      sql.type(z.object({ n: z.number() }))`select count(*)::int as n from outbox where relayed_at is null`,
    );
    const ledgerRows = await balance.anyFirst(sql.type(z.object({ id: z.number() }))`
    select id::int from outbox where topic = any(${sql.array(LEDGER_TOPICS, 'text')}) order by id`);
    t.is(ledgerRows.length, 3 + 120);

    const clients = await Promise.all(Array.from({ length: 8 }, () => quiet.db.client('balance')));
    const relayed = await Promise.all(clients.map((client) => relayUntilEmpty(client, 25)));
    t.is(
      relayed.reduce((a, b) => a + b, 0),
      rows,
      'the counts the relays report add up to the rows, once each',
    );
    t.true(relayed.filter((n) => n > 0).length > 1, `the work was shared: ${relayed.join(',')}`);

    const enqueued = await ledgerPostJobEvents(balance);
    t.is(enqueued.length, new Set(enqueued).size, 'no outbox row in two jobs');
    t.deepEqual(
      [...enqueued].sort((a, b) => a - b),
      ledgerRows,
    );

    // the jobs, run to the end by graphile-worker's runOnce with the real task
    const psp: PspAdapter = {
      submitPayout: () => Promise.reject(new Error('no payouts in this test')),
      getPayout: () => Promise.reject(new Error('no payouts in this test')),
      getSettlementStatement: () => Promise.reject(new Error('no statements in this test')),
      close: async () => {},
    };
    const taskList = buildTaskList({
      config: quiet.config,
      databases: quiet.db.databases,
      gateway: createGatewayService({ balance, ledger, logger, settings: quiet.config.gateway, psp }),
      psp,
      drainers: {
        balanceOutbox: createDrainer({ name: 'noop' }, async () => 0, logger),
        ledgerOutbox: createDrainer({ name: 'noop' }, async () => 0, logger),
        gatewayInbox: createDrainer({ name: 'noop' }, async () => 0, logger),
      },
      logger,
      webhooks: createWebhookSender(quiet.config.webhooks),
    });
    const runJobs = () =>
      runOnce({
        connectionString: quiet.db.balanceUrl,
        taskList: { ledger__post: taskList.ledger__post! },
        logger: graphileLogger(logger),
        noHandleSignals: true,
        concurrency: 4,
      });
    await runJobs();
    t.deepEqual(await ledgerPostJobEvents(balance), [], 'every ledger__post job done');
    const journals = await ledger.any(sql.type(z.object({ kind: z.string(), n: z.number() }))`
    select kind, count(*)::int as n from journal_transactions group by kind order by kind`);
    t.deepEqual(journals, [
      { kind: 'deposit', n: 3 },
      { kind: 'hold', n: 120 },
    ]);
    const afterFirstRun = await ledgerState(ledger);
    t.is(afterFirstRun.held.length, 120);
    t.deepEqual(await ledgerInvariants(ledger), []);
    t.deepEqual(await crossDatabaseInvariants(balance, ledger), [], 'I5: wallets = available, in transit = reserved');

    // the whole outbox delivered again (at-least-once): re-relay and run; the ledger does not move
    await balance.query(sql.unsafe`update outbox set relayed_at = null`);
    const again = await Promise.all(clients.map((client) => relayUntilEmpty(client, 100)));
    t.is(
      again.reduce((a, b) => a + b, 0),
      rows,
    );
    await runJobs();
    t.deepEqual(await ledgerState(ledger), afterFirstRun);
  },
);

// ---------------------------------------------------------------------------------------------
// lost notifications: the worker hears nothing and never polls; the sweep relays anyway

const ListenRow = z.object({ pid: z.number(), applicationName: z.string() });

async function listeners(db: TestSystem['db']['databases']['balance']) {
  return db.any(sql.type(ListenRow)`
    select pid, application_name as "applicationName" from pg_stat_activity
     where datname = current_database() and application_name like 'withdraw-listen%'`);
}

test.serial(
  'when every notification is lost and the relays never poll, then the outbox__sweep task still relays everything to success',
  async (t) => {
    const { balance, ledger } = deaf.db.databases;
    await eventually('the worker to LISTEN on the Balance DB', async () =>
      (await listeners(balance)).some((l) => l.applicationName === 'withdraw-listen-worker-balance'),
    );
    // lose every notification the relays listen for (the job queue's own stays); as the owner,
    // not as the application's roles
    const balanceOwner = await deaf.db.client('balance');
    const ledgerOwner = await deaf.db.client('ledger');
    await balanceOwner.query('alter table outbox disable trigger outbox_notify');
    await balanceOwner.query('alter table gateway_inbox disable trigger gateway_inbox_notify');
    await ledgerOwner.query('alter table outbox disable trigger outbox_notify');
    try {
      const { orders } = await placeMany(deaf, { userId: 'deaf-1', count: 10, amountMinor: 250n });
      // Nothing may relay these rows: no notification, no poll for 10 minutes, no cron. There is
      // no event to await for something that must not happen; a NOTIFY would arrive within
      // milliseconds, so this pause is ample to catch one that was not disabled.
      await new Promise((resolve) => setTimeout(resolve, 300));
      const unrelayed = await balance.oneFirst(sql.type(z.object({ n: z.number() }))`
      select count(*)::int as n from outbox where relayed_at is null`);
      t.is(unrelayed, 11, 'nothing relayed by itself: the credit and the 10 withdrawals wait');

      // what the cron does every minute, here every 200 ms
      await eventually(
        'every order to reach success through the sweep',
        async () => {
          await balance.query(sql.unsafe`select graphile_worker.add_job('outbox__sweep', '{}'::json)`);
          const rows = await ordersById(
            balance,
            orders.map((o) => o.orderId),
          );
          return orders.every((o) => rows.get(o.orderId)?.status === 'success');
        },
        60_000,
        200,
      );
      await eventually(
        'both outboxes and the inbox to drain through the sweep',
        async () => {
          await balance.query(sql.unsafe`select graphile_worker.add_job('outbox__sweep', '{}'::json)`);
          const left = await balance.oneFirst(sql.type(z.object({ n: z.number() }))`
        select ((select count(*) from outbox where relayed_at is null) + (select count(*) from gateway_inbox where processed_at is null))::int as n`);
          const ledgerLeft = await ledger.oneFirst(
            sql.type(z.object({ n: z.number() }))`select count(*)::int as n from outbox where relayed_at is null`,
          );
          return left + ledgerLeft === 0;
        },
        30_000,
        200,
      );
      await waitForQuiescence(balance, ledger);
      t.deepEqual(await allInvariants(balance, ledger), []);
    } finally {
      await balanceOwner.query('alter table outbox enable trigger outbox_notify');
      await balanceOwner.query('alter table gateway_inbox enable trigger gateway_inbox_notify');
      await ledgerOwner.query('alter table outbox enable trigger outbox_notify');
    }
  },
);

const LISTENER_NAMES = ['withdraw-listen-worker-balance', 'withdraw-listen-worker-ledger', 'withdraw-listen-withdraw-status'];

/** The listeners (by application name) that logged "notification listener down" since line `from` of deafLog. */
function listenersDown(from: number): Set<string> {
  const down = new Set<string>();
  for (const line of deafLog.slice(from)) {
    const entry = JSON.parse(line) as { msg?: string; listener?: string };
    if (entry.msg === 'notification listener down; restarting' && entry.listener) down.add(`withdraw-listen-${entry.listener}`);
  }
  return down;
}

async function allListeners(system: TestSystem) {
  return [...(await listeners(system.db.databases.balance)), ...(await listeners(system.db.databases.ledger))];
}

/** Terminates the LISTEN connections of both databases, as their owner (the app's roles may not). */
async function killListeners(system: TestSystem): Promise<boolean[]> {
  const killed: boolean[] = [];
  for (const which of ['balance', 'ledger'] as const) {
    const owner = await system.db.client(which);
    const { rows } = await owner.query<{ ok: boolean }>(`
      select pg_terminate_backend(pid) as ok from pg_stat_activity
       where datname = current_database() and application_name like 'withdraw-listen%'`);
    killed.push(...rows.map((row) => row.ok));
    await owner.end();
  }
  return killed;
}

async function listenersReplaced(system: TestSystem, oldPids: ReadonlySet<number>, timeoutMs: number): Promise<void> {
  await eventually(
    `new connections for ${LISTENER_NAMES.join(', ')}`,
    async () => {
      const now = await allListeners(system);
      return LISTENER_NAMES.every((name) => now.some((l) => l.applicationName === name && !oldPids.has(l.pid)));
    },
    timeoutMs,
  );
}

/**
 * Reconnecting wakes the relays once. After that nothing but a notification can (no poll, no
 * crons): one row with no backlog before it notifies, and gets relayed.
 */
async function eachRelayHearsItsChannel(t: import('ava').ExecutionContext, system: TestSystem) {
  const { balance, ledger } = system.db.databases;
  await waitForQuiescence(balance, ledger);
  const balancePing = await balance.oneFirst(sql.type(z.object({ id: z.bigint() }))`
    insert into outbox (topic, transaction_id, payload) values ('test.ping', gen_random_uuid(), '{}') returning id`);
  await eventually(
    'the Balance relay to hear balance_outbox and relay the ping',
    async () =>
      (await balance.maybeOneFirst(sql.type(z.object({ at: z.number().nullable() }))`
    select relayed_at as at from outbox where id = ${balancePing}`)) != null,
    15_000,
  );
  const ledgerPing = await ledger.oneFirst(sql.type(z.object({ id: z.bigint() }))`
    insert into outbox (topic, transaction_id, payload) values ('test.ping', gen_random_uuid(), '{}') returning id`);
  await eventually(
    'the Ledger relay to hear ledger_outbox and relay the ping',
    async () =>
      (await ledger.maybeOneFirst(sql.type(z.object({ at: z.number().nullable() }))`
    select relayed_at as at from outbox where id = ${ledgerPing}`)) != null,
    15_000,
  );
  const eventId = `ping-${randomUUID()}`;
  const reply = await sendCallback(system.url, { eventId, reference: `ping-${randomUUID()}`, status: 'paid' });
  t.is(reply.status, 200, reply.text);
  await eventually(
    'the inbox drainer to hear gateway_inbox and apply the ping',
    async () =>
      (await balance.maybeOneFirst(sql.type(z.object({ at: z.number().nullable() }))`
    select processed_at as at from gateway_inbox where event_id = ${eventId}`)) != null,
    15_000,
  );
}

test.serial(
  'when the LISTEN connections are killed, then they come back by themselves and a notification wakes each relay again',
  async (t) => {
    for (let round = 1; round <= 3; round += 1) {
      const before = await allListeners(deaf);
      t.true(before.length >= 3, `worker-balance, worker-ledger and the web's withdraw-status: ${JSON.stringify(before)}`);
      const killed = await killListeners(deaf);
      t.true(killed.length >= 3 && killed.every(Boolean));
      await listenersReplaced(deaf, new Set(before.map((l) => l.pid)), 20_000);
    }
    await eachRelayHearsItsChannel(t, deaf);
    t.deepEqual(await allInvariants(deaf.db.databases.balance, deaf.db.databases.ledger), []);
  },
);

test.serial(
  'when the databases refuse connections for longer than pg-listen retries by itself, then the listeners still come back',
  async (t) => {
    const before = await allListeners(deaf);
    const names = { balance: new URL(deaf.db.balanceUrl).pathname.slice(1), ledger: new URL(deaf.db.ledgerUrl).pathname.slice(1) };
    // from the cluster's admin database: a database's own sessions may not lock it out
    const owner = new pg.Client({ connectionString: process.env.TEST_PG_ADMIN_URL });
    await owner.connect();
    t.teardown(() => owner.end());
    const allow = async (allowed: boolean) => {
      for (const name of Object.values(names))
        await owner.query(`alter database ${owner.escapeIdentifier(name)} allow_connections ${allowed}`);
    };
    const logFrom = deafLog.length;
    await allow(false);
    try {
      const killed = await Promise.all([
        owner.query(
          `
      select pg_terminate_backend(pid) from pg_stat_activity
       where datname = any($1::text[]) and application_name like 'withdraw-listen%'`,
          [Object.values(names)],
        ),
      ]);
      t.true(killed[0].rowCount! >= 3);
      // pg-listen alone gives up (after retryLimit attempts or retryTimeout) and emits an error;
      // each listener logs that once it sees it, and starts over on its own
      await eventually(
        `pg-listen to give up reconnecting on its own, for each of ${LISTENER_NAMES.join(', ')}`,
        async () => LISTENER_NAMES.every((name) => listenersDown(logFrom).has(name)),
        20_000,
      );
      const during = (
        await owner.query<{ n: number }>(
          `
      select count(*)::int as n from pg_stat_activity where datname = any($1::text[]) and application_name like 'withdraw-listen%'`,
          [Object.values(names)],
        )
      ).rows[0]!.n;
      t.is(during, 0, 'nobody could reconnect meanwhile');
    } finally {
      await allow(true);
    }
    await listenersReplaced(deaf, new Set(before.map((l) => l.pid)), 30_000);
    await eachRelayHearsItsChannel(t, deaf);
    t.deepEqual(await allInvariants(deaf.db.databases.balance, deaf.db.databases.ledger), []);
  },
);
