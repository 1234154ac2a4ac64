// Two guards of the task list, run through graphile-worker's runOnce with the real tasks: a ledger
// batch that keeps failing is split until its bad event is alone (the good ones get posted), and a
// task that never finishes fails after WORKER_TASK_TIMEOUT_MS, freeing its slot and its lock.
import { randomUUID } from 'node:crypto';
import test from 'ava';
import { runOnce, type TaskList } from 'graphile-worker';
import { sql } from 'slonik';
import { z } from 'zod';
import type { Config } from '../app/config.ts';
import { createGatewayService } from '../app/gateway/gatewayService.ts';
import type { PspAdapter } from '../app/gateway/pspAdapter.ts';
import { postLedgerEvents, type RelayedEvent } from '../app/ledger/ledgerPosting.ts';
import { createLogger } from '../app/logger.ts';
import { createDrainer, type Drainer } from '../app/outbox/drainer.ts';
import { createWebhookSender } from '../app/webhooks/webhookDelivery.ts';
import { buildTaskList, type Drainers, LEDGER_SPLIT_AFTER_ATTEMPTS, TaskTimeoutError } from '../jobs/tasks.ts';
import { graphileLogger } from '../jobs/workerApp.ts';
import { journalKindsOf } from './helpers/asyncChecks.ts';
import { startTestSystem, testConfig, type TestSystem } from './helpers/system.ts';

const logger = createLogger({ level: 'silent', name: 'test-worker-tasks' });
const TASK_TIMEOUT_MS = 1_000;

/** web only: no worker runs the jobs but the test's runOnce */
let system: TestSystem;
test.before(async () => {
  system = await startTestSystem();
});
test.after.always(async () => {
  await system?.stop();
});

const noPayouts: PspAdapter = {
  submitPayout: () => Promise.reject(new Error('no payouts in this test')),
  getPayout: () => Promise.reject(new Error('no payouts in this test')),
  getSettlementStatement: () => Promise.reject(new Error('no statements in this test')),
  close: async () => {},
};
const idle = (name: string) => createDrainer({ name }, async () => 0, logger);

function taskList(config: Config, drainers: Drainers): TaskList {
  const { balance, ledger } = system.db.databases;
  const gateway = createGatewayService({ balance, ledger, logger, settings: config.gateway, psp: noPayouts });
  const webhooks = createWebhookSender(config.webhooks);
  return buildTaskList({ config, databases: system.db.databases, gateway, psp: noPayouts, drainers, logger, webhooks });
}

/** runOnce with one slot; throws, saying what it waited for, if it does not finish in time */
async function runJobs(tasks: TaskList): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error('waited 20000 ms for runOnce to run every job it can and return')), 20_000);
  });
  const run = runOnce({
    connectionString: system.db.balanceUrl,
    taskList: tasks,
    concurrency: 1,
    noHandleSignals: true,
    logger: graphileLogger(logger),
  });
  await Promise.race([run, deadline]).finally(() => clearTimeout(timer));
}

const JobRow = z.object({
  id: z.bigint(),
  taskIdentifier: z.string(),
  attempts: z.number(),
  lockedAt: z.number().nullable(),
  lastError: z.string().nullable(),
  outboxIds: z.array(z.number()).nullable(),
});

async function jobs(): Promise<readonly z.infer<typeof JobRow>[]> {
  return system.db.databases.balance.any(sql.type(JobRow)`
    select j.id, k.identifier as "taskIdentifier", j.attempts, j.locked_at as "lockedAt", j.last_error as "lastError",
           (select array_agg((e ->> 'outboxId')::int order by (e ->> 'outboxId')::int)
              from json_array_elements(j.payload -> 'events') e) as "outboxIds"
      from graphile_worker._private_jobs j join graphile_worker._private_tasks k on k.id = j.task_id
     order by j.id`);
}

test.serial(
  'when one event of a ledger batch keeps failing, then the batch is split until the bad event is alone in a failing job, and the others are posted',
  async (t) => {
    const { balance, ledger } = system.db.databases;
    const accountId = randomUUID();
    const event = (outboxId: number, topic: RelayedEvent['topic'], transactionId: string, amountMinor: string): RelayedEvent => ({
      outboxId,
      topic,
      transactionId,
      payload: { transactionId, accountId, amountMinor, currency: 'USD' },
    });
    const bad = randomUUID();
    await postLedgerEvents(ledger, [event(1, 'withdraw.created', bad, '500')]);
    const good = [randomUUID(), randomUUID(), randomUUID()];
    // the settle does not match its hold (500): the ledger refuses it, and with it the whole batch
    const batch = [
      event(11, 'withdraw.created', good[0]!, '100'),
      event(12, 'withdraw.success', bad, '400'),
      event(13, 'withdraw.created', good[1]!, '200'),
      event(14, 'withdraw.created', good[2]!, '300'),
    ];
    await balance.query(
      sql.unsafe`select graphile_worker.add_job('ledger__post', ${sql.json({ events: batch } as unknown as Parameters<typeof sql.json>[0])}, max_attempts => 25)`,
    );

    const tasks = {
      ledger__post: taskList(system.config, { balanceOutbox: idle('b'), ledgerOutbox: idle('l'), gatewayInbox: idle('i') }).ledger__post!,
    };
    const goodKinds = async () => [...(await journalKindsOf(ledger, good)).values()].map((kinds) => kinds.join());
    // each failed attempt is retried at once instead of after graphile-worker's backoff
    const attempt = async () => {
      await balance.query(sql.unsafe`
        select graphile_worker.reschedule_jobs(array_agg(id), run_at := now()) from graphile_worker.jobs where task_identifier = 'ledger__post'`);
      await runJobs(tasks);
    };
    for (let failed = 1; failed < LEDGER_SPLIT_AFTER_ATTEMPTS; failed += 1) {
      await attempt();
      t.deepEqual(
        (await jobs()).map((j) => [j.outboxIds, j.attempts]),
        [[[11, 12, 13, 14], failed]],
        `failure ${failed}: the batch is retried whole`,
      );
      t.deepEqual(await goodKinds(), ['', '', ''], `failure ${failed}: nothing posted`);
    }
    const loneBad = (rows: Awaited<ReturnType<typeof jobs>>) => rows.length === 1 && rows[0]!.outboxIds?.join() === '12';
    for (let round = 0; !(loneBad(await jobs()) && (await goodKinds()).every((k) => k === 'hold')); round += 1) {
      if (round === 4 * LEDGER_SPLIT_AFTER_ATTEMPTS) {
        throw new Error(`the bad event is not alone after ${round} more rounds: ${JSON.stringify((await jobs()).map((j) => j.outboxIds))}`);
      }
      await attempt();
    }
    const [lone] = await jobs();
    t.like(lone, { taskIdentifier: 'ledger__post', lockedAt: null });
    t.true(lone!.attempts >= 1, 'the lone bad event keeps failing');
    t.truthy(lone!.lastError);
    // why it fails: the settle does not match its hold
    const refused = await t.throwsAsync(postLedgerEvents(ledger, [batch[1]!]));
    t.is((refused as Error & { constraint?: string }).constraint, 'ledger_release_matches_hold');
    const kinds = await journalKindsOf(ledger, [...good, bad]);
    t.deepEqual(
      [...good, bad].map((tx) => kinds.get(tx)),
      [['hold'], ['hold'], ['hold'], ['hold']],
      'every good event posted once; the bad settle not at all',
    );
  },
);

test.serial(
  'when a task never finishes, then it fails with TaskTimeoutError after WORKER_TASK_TIMEOUT_MS, and its slot and lock are freed for the next job',
  async (t) => {
    const { balance } = system.db.databases;
    const config = testConfig(system.db, { WORKER_TASK_TIMEOUT_MS: String(TASK_TIMEOUT_MS) });
    // a drain awaiting a connection that died without an error: it never settles
    const stuck: Drainer = {
      name: 'stuck',
      wake: () => {},
      stop: async () => {},
      drain: () => new Promise<number>(() => {}),
      stats: () => ({ passes: 0, rows: 0, errors: 0 }),
    };
    const all = taskList(config, { balanceOutbox: stuck, ledgerOutbox: stuck, gatewayInbox: stuck });
    const tasks = { outbox__sweep: all.outbox__sweep!, idempotency__prune: all.idempotency__prune! };
    await balance.query(sql.unsafe`select graphile_worker.add_job('outbox__sweep', '{}'::json, max_attempts => 5)`);
    await balance.query(
      sql.unsafe`select graphile_worker.add_job('idempotency__prune', '{}'::json, run_at => now() + interval '1 millisecond')`,
    );

    // one slot: the prune job runs only once the stuck sweep has given it up
    await runJobs(tasks);

    const left = (await jobs()).filter((j) => j.taskIdentifier in tasks);
    t.is(left.length, 1, 'the prune job ran to completion after it');
    // failed (to be retried later) with TaskTimeoutError's message, and no longer locked
    t.like(left[0], {
      taskIdentifier: 'outbox__sweep',
      attempts: 1,
      lockedAt: null,
      lastError: new TaskTimeoutError(`outbox__sweep did not finish within ${TASK_TIMEOUT_MS} ms`).message,
    });
  },
);
