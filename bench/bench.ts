// `npm run bench -- [--duration S] [--connections C] [--users U] [--e2e N] [--backlog N] [--workers K]`
//
// On a fresh embedded PostgreSQL (durable settings, as in production) with web, K workers and
// the provider simulator as real processes:
//   A. POST /withdraw throughput and latency for S seconds with C connections (autocannon), the
//      worker draining the async path at the same time, as in production;
//   B. end to end: N withdrawals fired with C in flight, timed from the first request to the last
//      final state, with per-order latency (created → success) read from the database.
// Prints a report; numbers go in the issue notes, never in test assertions.
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import pg from 'pg';
import { v4 as uuidv4, v7 as uuidv7 } from 'uuid';
import { loadConfig, processEnvironment } from '../app/config.ts';
import { temporaryDataDir } from '../app/db/embeddedPostgres.ts';
import { signUserToken } from '../app/http/auth.ts';
import { createLogger } from '../app/logger.ts';
import { launchSystem, type LaunchedSystem } from '../app/supervisor.ts';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '64' },
    users: { type: 'string', default: '200' },
    e2e: { type: 'string', default: '1000' },
    workers: { type: 'string', default: '1' },
    backlog: { type: 'string', default: '3000' },
  },
});
const durationSeconds = Number(args.duration);
const connections = Number(args.connections);
const userCount = Number(args.users);
const e2eCount = Number(args.e2e);
const workers = Number(args.workers);
const backlogCount = Number(args.backlog);

const log = (message: string) => process.stderr.write(`${message}\n`);

async function admin(system: LaunchedSystem, token: string, path: string, body: unknown) {
  const response = await fetch(`${system.webUrl}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = (await response.json()) as { code: number; data: Record<string, string> };
  if (json.code !== 0) throw new Error(`${path}: ${JSON.stringify(json)}`);
  return json.data;
}

async function seedUsers(system: LaunchedSystem, adminToken: string, jwtSecret: string) {
  const users: Array<{ userId: string; token: string }> = [];
  for (let i = 0; i < userCount; i += 1) {
    const userId = `bench-${i}`;
    const account = await admin(system, adminToken, '/admin/accounts', { userId, currency: 'USD' });
    await admin(system, adminToken, `/admin/accounts/${account.accountId}/credits`, { amount: '10000000.00', transactionId: uuidv4() });
    users.push({ userId, token: await signUserToken(jwtSecret, userId) });
  }
  return users;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function waitForQuiet(client: pg.Client, timeoutMs: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    const { rows } = await client.query<{ n: number }>(`
      select ((select count(*) from withdraw_orders where status in ('init', 'processing'))
            + (select count(*) from outbox where relayed_at is null)
            + (select count(*) from graphile_worker.jobs where task_identifier in ('ledger__post', 'gateway__submit', 'gateway__submit_batch')))::int as n`);
    if (rows[0]!.n === 0) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`not quiet after ${timeoutMs} ms (${rows[0]!.n} pending)`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function phaseHotPath(system: LaunchedSystem, users: Array<{ token: string }>) {
  let next = 0;
  const result = await autocannon({
    url: system.webUrl,
    connections,
    duration: durationSeconds,
    requests: [
      {
        method: 'POST',
        path: '/withdraw',
        setupRequest: (request) => {
          const user = users[next++ % users.length]!;
          return {
            ...request,
            headers: {
              'content-type': 'application/json',
              authorization: `Bearer ${user.token}`,
              'idempotent-key': uuidv7(),
            },
            body: JSON.stringify({ toAccountId: 'bench-bank', amount: '0.01' }),
          };
        },
      },
    ],
  });
  return {
    requests: result.requests.total,
    requestsPerSecond: result.requests.average,
    latencyMs: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, max: result.latency.max },
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
  };
}

async function phaseEndToEnd(system: LaunchedSystem, users: Array<{ token: string }>, client: pg.Client) {
  const startedAt = new Date();
  const t0 = performance.now();
  let issued = 0;
  let rejected = 0;
  const orderIds: string[] = [];
  const fire = async () => {
    while (issued < e2eCount) {
      const user = users[issued % users.length]!;
      issued += 1;
      const response = await fetch(`${system.webUrl}/withdraw`, {
        method: 'POST',
        headers: { authorization: `Bearer ${user.token}`, 'idempotent-key': uuidv7(), 'content-type': 'application/json' },
        body: JSON.stringify({ toAccountId: 'bench-bank', amount: '0.02' }),
      });
      const body = (await response.json()) as { data?: { withdrawOrderId?: string } };
      if (response.status === 202 && body.data?.withdrawOrderId) orderIds.push(body.data.withdrawOrderId);
      else rejected += 1;
    }
  };
  await Promise.all(Array.from({ length: connections }, fire));
  const requestsDoneMs = performance.now() - t0;
  for (;;) {
    const { rows } = await client.query<{ open: number }>(
      `select count(*)::int as open from withdraw_orders where id = any($1::uuid[]) and status not in ('success', 'failed', 'manual')`,
      [orderIds],
    );
    if (rows[0]!.open === 0) break;
    if (performance.now() - t0 > 300_000) throw new Error(`${rows[0]!.open} orders still open after 300 s`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const allFinalMs = performance.now() - t0;
  const { rows } = await client.query<{ status: string; ms: number }>(
    `select o.status, extract(epoch from (o.updated_at - o.created_at)) * 1000 as ms
       from withdraw_orders o where o.id = any($1::uuid[])`,
    [orderIds],
  );
  const latencies = rows.map((r) => Number(r.ms)).sort((a, b) => a - b);
  const statuses: Record<string, number> = {};
  for (const r of rows) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
  return {
    orders: orderIds.length,
    rejected,
    startedAt: startedAt.toISOString(),
    requestsDoneMs: Math.round(requestsDoneMs),
    firstRequestToLastFinalMs: Math.round(allFinalMs),
    withdrawalsPerSecond: Math.round((orderIds.length / allFinalMs) * 1000),
    createdToFinalMs: {
      p50: Math.round(percentile(latencies, 50)),
      p99: Math.round(percentile(latencies, 99)),
      max: Math.round(latencies.at(-1) ?? NaN),
    },
    statuses,
  };
}

/**
 * C. The asynchronous pipeline alone: withdrawals created while the workers are stopped, then the
 * workers started and timed until every order is final (relays, ledger, provider, callbacks).
 */
async function phaseBacklog(system: LaunchedSystem, users: Array<{ token: string }>, client: pg.Client) {
  const workerNames = system.children.filter((c) => c.name.startsWith('worker-')).map((c) => c.name);
  for (const name of workerNames) {
    system.child(name).autoRestart = false;
    await system.kill(name, 'SIGTERM');
  }
  let issued = 0;
  const fire = async () => {
    while (issued < backlogCount) {
      const user = users[issued % users.length]!;
      issued += 1;
      const response = await fetch(`${system.webUrl}/withdraw`, {
        method: 'POST',
        headers: { authorization: `Bearer ${user.token}`, 'idempotent-key': uuidv7(), 'content-type': 'application/json' },
        body: JSON.stringify({ toAccountId: 'bench-bank', amount: '0.03' }),
      });
      await response.text();
    }
  };
  await Promise.all(Array.from({ length: connections }, fire));
  const t0 = performance.now();
  for (const name of workerNames) {
    system.child(name).autoRestart = true;
    system.start(name);
  }
  const drainMs = await waitForQuiet(client, 600_000);
  return {
    orders: backlogCount,
    drainMs: Math.round(drainMs),
    withdrawalsPerSecond: Math.round((backlogCount / (performance.now() - t0)) * 1000),
  };
}

async function main() {
  const dataDir = await temporaryDataDir('withdraw-bench-');
  const config = loadConfig({
    ...processEnvironment(),
    PORT: '0',
    PSP_SIM_PORT: '0',
    EMBEDDED_PG_DIR: dataDir,
    EMBEDDED_PG_PORT: String(20_000 + Math.floor(Math.random() * 20_000)),
    LOG_LEVEL: processEnvironment().LOG_LEVEL ?? 'error',
    NODE_ENV: 'production',
    BALANCE_DATABASE_URL: '',
    LEDGER_DATABASE_URL: '',
    PSP_BASE_URL: '',
  });
  const logger = createLogger({ level: 'warn', name: 'bench' });
  log(`starting: embedded PostgreSQL in ${dataDir}, web, ${workers} worker(s), simulator`);
  const system = await launchSystem({ config, logger, workers, stdio: 'inherit', autoRestart: false });
  const client = new pg.Client({ connectionString: system.urls.balanceUrl });
  try {
    await system.waitForReady(60_000);
    await client.connect();
    log(`seeding ${userCount} funded users`);
    const users = await seedUsers(system, config.auth.adminToken, config.auth.jwtSecret);
    if (workers > 0) await waitForQuiet(client, 60_000);

    log(`A: POST /withdraw for ${durationSeconds} s, ${connections} connections`);
    const hotPath = await phaseHotPath(system, users);
    log(`   ${Math.round(hotPath.requestsPerSecond)} req/s, p50 ${hotPath.latencyMs.p50} ms, p99 ${hotPath.latencyMs.p99} ms; draining`);
    if (workers === 0) {
      process.stdout.write(
        `${JSON.stringify({ settings: { durationSeconds, connections, users: userCount, workers }, hotPath }, null, 2)}\n`,
      );
      return;
    }
    const drainMs = await waitForQuiet(client, 600_000);

    log(`B: ${e2eCount} withdrawals end to end, ${connections} in flight`);
    const endToEnd = await phaseEndToEnd(system, users, client);
    await waitForQuiet(client, 600_000);
    log(`C: ${backlogCount} withdrawals queued with the workers stopped, then drained`);
    const pipeline = backlogCount > 0 ? await phaseBacklog(system, users, client) : null;
    const report = {
      machine: { cpus: (await import('node:os')).cpus().length, node: process.version },
      settings: { durationSeconds, connections, users: userCount, workers, e2e: e2eCount },
      hotPath: { ...hotPath, drainAfterMs: drainMs },
      endToEnd,
      pipeline,
    };
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } finally {
    await client.end().catch(() => {});
    await system.stop();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    log(`bench failed: ${error instanceof Error ? error.stack : String(error)}`);
    process.exit(1);
  },
);
