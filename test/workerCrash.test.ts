// A worker process dies hard (SIGKILL) or is stopped (SIGTERM) with payouts in flight. The web
// process and the simulator live in this test process; the worker is `jobs/worker.ts` itself,
// run as a child process. After a new worker and the watchdog, every order converges, the
// provider executed each payout once (I7), and no job stays locked by the dead worker.
import { spawn, type ChildProcess } from 'node:child_process';
import test from 'ava';
import { sql } from 'slonik';
import { z } from 'zod';
import { projectRoot } from '../app/paths.ts';
import { createPspSimulator, type PspSimulator } from '../app/gateway/simulator/pspSimulator.ts';
import type { WorkerProcess } from '../jobs/workerApp.ts';
import { unlockStaleWorkers } from '../jobs/tasks.ts';
import { allInvariants } from '../reconcile/invariants.ts';
import { eventually, historyOf, journalKindsOf, placeMany, type PlacedOrder } from './helpers/asyncChecks.ts';
import { waitForQuiescence } from './helpers/quiescence.ts';
import { startTestSystem, TEST_SECRETS, testConfig, type TestSystem } from './helpers/system.ts';
import { createPspHttpAdapter } from '../app/gateway/pspHttpAdapter.ts';
import { createLogger } from '../app/logger.ts';
import { startWorkerProcess } from '../jobs/workerApp.ts';

const STALE_AFTER_MS = 2_000;

/** tuned like FAST_ASYNC_ENV, with a client timeout well above the simulator's latency */
const WORKER_ENV: Record<string, string> = {
  WORKER_STALE_AFTER_MS: String(STALE_AFTER_MS),
  WORKER_HEARTBEAT_INTERVAL_MS: '500',
  WORKER_CONCURRENCY: '16',
  WORKER_SHUTDOWN_GRACE_MS: '3000',
  RELAY_POLL_INTERVAL_MS: '200',
  GATEWAY_TIMEOUT_MS: '15000',
  GATEWAY_CONNECT_TIMEOUT_MS: '1000',
  GATEWAY_RETRY_BASE_MS: '20',
  GATEWAY_RETRY_MAX_MS: '200',
};

let system: TestSystem;
let sim: PspSimulator;
let simUrl: string;
const children: ChildProcess[] = [];

test.before(async () => {
  system = await startTestSystem(); // web only: the workers are started by the tests
  sim = createPspSimulator({
    port: 0,
    callbackUrl: `${system.url}/withdraw/notify`,
    webhookSecret: TEST_SECRETS.PSP_WEBHOOK_SECRET,
    seed: 7,
  });
  simUrl = (await sim.start()).url;
});
test.after.always(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await sim?.stop();
  await system?.stop();
});

type Child = Readonly<{
  process: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}>;

function spawnWorker(): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', 'jobs/worker.ts'], {
    cwd: projectRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'test',
      LOG_LEVEL: 'warn',
      BALANCE_DATABASE_URL: system.db.balanceUrl,
      LEDGER_DATABASE_URL: system.db.ledgerUrl,
      PSP_BASE_URL: simUrl,
      ...TEST_SECRETS,
      ...WORKER_ENV,
    },
  });
  children.push(child);
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-20_000);
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-20_000);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
  return { process: child, output: () => output, exited };
}

/** graphile-worker's id of the child, from its heartbeat */
async function workerIdOf(child: Child): Promise<string> {
  let id: string | null = null;
  await eventually(
    'the worker child to beat (or exit)',
    async () => {
      id = await system.db.databases.balance.maybeOneFirst(sql.type(z.object({ workerId: z.string() }))`
      select worker_id as "workerId" from worker_heartbeats where pid = ${child.process.pid!}`);
      return id !== null || child.process.exitCode !== null;
    },
    60_000,
    100,
  );
  if (id === null) throw new Error(`the worker child did not start: ${child.output()}`);
  return id;
}

async function lockedBy(workerId: string, task?: string): Promise<number> {
  return system.db.databases.balance.oneFirst(sql.type(z.object({ n: z.number() }))`
    select count(*)::int as n from graphile_worker.jobs
     where locked_by = ${workerId} and (${task ?? null}::text is null or task_identifier = ${task ?? null}::text)`);
}

async function startInProcessWorker(): Promise<{ worker: WorkerProcess; close: () => Promise<void> }> {
  const config = testConfig(system.db, { ...WORKER_ENV, PSP_BASE_URL: simUrl });
  const psp = createPspHttpAdapter({ baseUrl: simUrl, ...config.gateway });
  const worker = await startWorkerProcess({
    config,
    databases: system.db.databases,
    balanceUrl: system.db.balanceUrl,
    ledgerUrl: system.db.ledgerUrl,
    psp,
    logger: createLogger({ level: 'silent', name: 'test-worker' }),
  });
  return {
    worker,
    close: async () => {
      await worker.stop();
      await psp.close();
    },
  };
}

async function placeOrders(prefix: string, users: number, perUser: number): Promise<PlacedOrder[]> {
  const placed = await Promise.all(
    Array.from({ length: users }, (_, i) =>
      placeMany(system, { userId: `${prefix}-${i}`, count: perUser, amountMinor: 1_000n + BigInt(i) }),
    ),
  );
  return placed.flatMap((p) => p.orders);
}

async function checkConverged(t: import('ava').ExecutionContext, orders: readonly PlacedOrder[]) {
  const { balance, ledger } = system.db.databases;
  const statuses = await system.waitForOrders(
    orders.map((o) => o.orderId),
    ['success', 'failed', 'manual'],
    60_000,
  );
  await waitForQuiescence(balance, ledger, 60_000);
  t.deepEqual(
    orders.filter((o) => statuses.get(o.orderId) !== 'success').map((o) => `${o.orderId} ${statuses.get(o.orderId)}`),
    [],
  );
  t.deepEqual(await allInvariants(balance, ledger), []);
  const executed = sim.stats().executed;
  t.deepEqual(
    orders.filter((o) => executed[o.transactionId] !== 1).map((o) => `${o.transactionId} x${executed[o.transactionId]}`),
    [],
    'I7: each payout executed exactly once',
  );
  const journals = await journalKindsOf(
    ledger,
    orders.map((o) => o.transactionId),
  );
  for (const order of orders) {
    t.deepEqual(journals.get(order.transactionId), ['hold', 'settle']);
    t.deepEqual(
      (await historyOf(balance, order.orderId)).map((h) => h.toStatus),
      ['init', 'processing', 'success'],
    );
  }
}

test.serial(
  'when the worker is killed with SIGKILL mid-flight, then a new worker and the watchdog bring every order to success, each payout executed once',
  async (t) => {
    const { balance } = system.db.databases;
    // answers come late and callbacks later still: the kill lands while both are pending
    sim.setKnobs({ latencyMs: 3_000, lateCallbackMs: 4_000 });
    const child = spawnWorker();
    const deadId = await workerIdOf(child);
    const orders = await placeOrders('crash', 5, 10);

    await eventually(
      () => `the child to lock a submission batch; its output: ${child.output()}`,
      async () => (await lockedBy(deadId, 'gateway__submit_batch')) >= 1,
      30_000,
    );
    child.process.kill('SIGKILL');
    const exit = await child.exited;
    t.is(exit.signal, 'SIGKILL');
    const lockedAtDeath = await lockedBy(deadId);
    t.true(lockedAtDeath >= 1, `${lockedAtDeath} jobs locked by the dead worker`);
    const openAtDeath = await balance.oneFirst(sql.type(z.object({ n: z.number() }))`
    select count(*)::int as n from withdraw_orders where status <> 'success' and id = any(${sql.array(
      orders.map((o) => o.orderId),
      'uuid',
    )})`);
    t.true(openAtDeath > 0, 'some orders were still open when the worker died');
    t.log(`at the kill: ${lockedAtDeath} jobs locked by the dead worker, ${openAtDeath} of ${orders.length} orders open`);

    sim.setKnobs({ latencyMs: 0 });
    const next = await startInProcessWorker();
    try {
      // the watchdog (what the worker__watchdog cron runs each minute): frees the dead worker's jobs
      // once its heartbeat is older than WORKER_STALE_AFTER_MS
      await eventually(
        'the watchdog to free every job of the dead worker',
        async () => {
          await unlockStaleWorkers(system.db.databases, STALE_AFTER_MS);
          return (await lockedBy(deadId)) === 0;
        },
        30_000,
        250,
      );
      await checkConverged(t, orders);
      t.is(await lockedBy(deadId), 0);
      // the watchdog also forgets the dead worker's heartbeat eventually (10 x stale); a live one stays
      const beats = await balance.anyFirst(
        sql.type(z.object({ workerId: z.string() }))`select worker_id as "workerId" from worker_heartbeats`,
      );
      t.true(beats.includes(next.worker.workerId()!), 'the live worker beats');
    } finally {
      await next.close();
    }
  },
);

test.serial(
  'when the worker gets SIGTERM mid-flight, then it exits cleanly within its grace period, leaves no job locked, and the next worker finishes the work',
  async (t) => {
    sim.setKnobs({ latencyMs: 4_000, lateCallbackMs: 0 });
    const child = spawnWorker();
    const workerId = await workerIdOf(child);
    const orders = await placeOrders('term', 3, 10);
    await eventually(
      () => `the child to lock a submission batch; its output: ${child.output()}`,
      async () => (await lockedBy(workerId, 'gateway__submit_batch')) >= 1,
      30_000,
    );
    child.process.kill('SIGTERM');
    const exit = await child.exited;
    t.deepEqual(exit, { code: 0, signal: null }, child.output());
    // no watchdog here: a graceful stop releases what it held
    t.is(await lockedBy(workerId), 0, 'nothing left locked by the stopped worker');
    t.is(
      await system.db.databases.balance.maybeOneFirst(sql.type(z.object({ workerId: z.string() }))`
    select worker_id as "workerId" from worker_heartbeats where worker_id = ${workerId}`),
      null,
      'its heartbeat is removed',
    );

    // the submissions it was running were aborted through helpers.abortSignal: recorded as unknown
    const aborted = await system.db.databases.balance.oneFirst(sql.type(z.object({ n: z.number() }))`
    select count(*)::int as n from gateway_submit_attempts
     where result = 'unknown' and detail ->> 'reason' ~* 'abort'
       and transaction_id = any(${sql.array(
         orders.map((o) => o.transactionId),
         'uuid',
       )})`);
    t.true(aborted > 0, 'running submissions were aborted, and their outcome recorded as unknown');

    sim.setKnobs({ latencyMs: 0 });
    const next = await startInProcessWorker();
    try {
      await checkConverged(t, orders);
    } finally {
      await next.close();
    }
  },
);

test.serial(
  'when a live worker holds jobs longer than the stale period, then the watchdog leaves them alone: its heartbeat is fresh',
  async (t) => {
    sim.setKnobs({ latencyMs: 4_000, lateCallbackMs: 0 });
    const live = await startInProcessWorker();
    try {
      await eventually('the live worker to get its id', async () => live.worker.workerId() !== null, 10_000);
      const liveId = live.worker.workerId()!;
      const orders = await placeOrders('live', 2, 5);
      // jobs locked for longer than WORKER_STALE_AFTER_MS by a worker that keeps beating
      const longLocked = () =>
        system.db.databases.balance.oneFirst(sql.type(z.object({ n: z.number() }))`
      select count(*)::int as n from graphile_worker.jobs
       where locked_by = ${liveId} and locked_at < now() - make_interval(secs => ${(STALE_AFTER_MS + 500) / 1000})`);
      await eventually('some job to be locked past the stale period', async () => (await longLocked()) > 0, 20_000);
      t.deepEqual(await unlockStaleWorkers(system.db.databases, STALE_AFTER_MS), []);
      t.true((await longLocked()) > 0, 'still locked by the live worker');
      sim.setKnobs({ latencyMs: 0 });
      await checkConverged(t, orders);
    } finally {
      sim.setKnobs({ latencyMs: 0 });
      await live.close();
    }
  },
);
