// `npm run bench:client-api -- [--orders 1000000] [--users 10000] [--requests 1000] [--batches 20] [--events 10000]`
//
// The client API at volume, on a fresh durable embedded PostgreSQL in a temp folder (a scratch
// database): both databases migrated; N withdraw orders bulk-loaded with set-based SQL over 90 days
// across the users (one "whale" holds 10% of them; statuses as in production: mostly success, some
// failed, a few open or in manual review); VACUUM ANALYZE; then the real web process on it, and
// sequential HTTP requests, each scenario timed per request: GET /withdraws pages (a user's first
// page, deep pages by cursor, filters, an admin's listing), and POST /withdraw/batch with 1,000 items
// on a funded account. Then outgoing events: --events orders enter processing (history rows), the
// relay's fan-out (webhook_enqueue_events, 500 orders a call) makes their events, and graphile-worker
// delivery jobs with the default WEBHOOK_* settings send them to a real HTTP receiver on this machine
// that verifies every signature: the delivery rate to one endpoint, then to four at once. Prints the
// p50, p99 and max per scenario, and writes the JSON to bench/results/client-api-<time>.json. Run it
// alone on the machine (the exclusive lock).
import { mkdirSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { Logger as GraphileLogger, run, type Task } from 'graphile-worker';
import type { DatabasePool } from 'slonik';
import pg from 'pg';
import { v7 as uuidv7 } from 'uuid';
import { loadConfig } from '../app/config.ts';
import { ensureDatabase, startEmbeddedCluster, temporaryDataDir, type EmbeddedCluster } from '../app/db/embeddedPostgres.ts';
import { migrateAll } from '../app/db/migrate.ts';
import { verifyWebhook } from '../app/gateway/webhookSignature.ts';
import { createDatabases, endDatabases, type Databases } from '../app/db/pools.ts';
import { signUserToken } from '../app/http/auth.ts';
import { createLogger } from '../app/logger.ts';
import { projectRoot } from '../app/paths.ts';
import { createWebhookSender } from '../app/webhooks/webhookDelivery.ts';
import { startWebProcess, type WebProcess } from '../app/webApp.ts';
import type { Config } from '../app/config.ts';

const { values: args } = parseArgs({
  options: {
    orders: { type: 'string', default: '1000000' },
    users: { type: 'string', default: '10000' },
    requests: { type: 'string', default: '1000' },
    batches: { type: 'string', default: '20' },
    events: { type: 'string', default: '10000' },
  },
});
const ORDERS = Number(args.orders);
const USERS = Number(args.users);
const REQUESTS = Number(args.requests);
const BATCHES = Number(args.batches);
const EVENTS = Number(args.events);
if (!Number.isInteger(ORDERS) || ORDERS < 10_000) throw new Error('--orders: at least 10000');
if (!Number.isInteger(USERS) || USERS < 10 || USERS > ORDERS / 10) throw new Error('--users: 10..orders/10');
if (!Number.isInteger(REQUESTS) || REQUESTS < 10) throw new Error('--requests: at least 10');
if (!Number.isInteger(BATCHES) || BATCHES < 1) throw new Error('--batches: at least 1');
if (!Number.isInteger(EVENTS) || EVENTS < 0 || EVENTS > ORDERS / 2) throw new Error('--events: 0..orders/2 (0: no webhook phase)');
const WHALE = 'bench-whale';
const SECRETS = { AUTH_JWT_SECRET: 'bench-jwt-secret-0123456789-abcdefghijklmnop', ADMIN_TOKEN: 'bench-admin-token-0123456789' };

const log = (message: string) => process.stderr.write(`${message}\n`);

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Orders g = 1..N: user g % users, except every tenth to the whale; newest last; all columns from g. */
async function load(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`set session_replication_role = replica; set work_mem = '512MB'; set maintenance_work_mem = '1GB'`);
    const step = async (label: string, text: string, values: unknown[]) => {
      const started = performance.now();
      const result = await client.query(text, values);
      log(`  ${label}: ${result.rowCount ?? 0} rows, ${Math.round(performance.now() - started)} ms`);
    };
    await step(
      'accounts',
      `insert into accounts (id, user_id, currency, balance_minor, available_minor, created_at)
       select md5('acct' || u)::uuid, case when u = $1::int then $2 else 'bench-' || u end, 'USD',
              1000000000000, 1000000000000, now() - interval '120 days'
         from generate_series(0, $1::int) u`,
      [USERS, WHALE],
    );
    await step(
      'withdraw_orders',
      `insert into withdraw_orders (id, transaction_id, user_id, account_id, to_account_id, amount_minor, currency, status,
                                    failure_reason, created_at, updated_at)
       select md5('order' || s.g)::uuid, md5('tx' || s.g)::uuid, case when s.u = $2::int then $3 else 'bench-' || s.u end,
              md5('acct' || s.u)::uuid, 'bank-' || s.u, 100 + s.g % 99900, 'USD', s.status,
              case when s.status = 'failed' then 'provider_rejected' end, s.created_at, s.created_at + interval '30 seconds'
         from (select g, case when g % 10 = 0 then $2::int else g % $2::int end as u,
                      now() - interval '90 days' * (($1::int - g)::float8 / $1::int) as created_at,
                      case when r < 2 then 'manual' when r < 40 then 'processing' when r < 110 then 'failed' else 'success' end as status
                 from (select g, (hashint4(g * 31 + 7)::bigint + 2147483648) % 1000 as r from generate_series(1, $1::int) g) x) s`,
      [ORDERS, USERS, WHALE],
    );
    await client.query('vacuum (analyze)');
  } finally {
    await client.end();
  }
}

type Timing = { scenario: string; requests: number; p50Ms: number; p99Ms: number; maxMs: number; items: number };

function summarize(scenario: string, ms: number[], items: number): Timing {
  const sorted = [...ms].sort((a, b) => a - b);
  const at = (q: number) => Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! * 100) / 100;
  return { scenario, requests: ms.length, p50Ms: at(0.5), p99Ms: at(0.99), maxMs: at(1), items };
}

/** The part of a listing's reply the bench reads. */
type Page = { data: { items: unknown[]; nextCursor: string | null } };

async function get(url: string, token: string): Promise<{ ms: number; body: Page }> {
  const started = performance.now();
  const response = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
  const body = (await response.json()) as Page;
  const ms = performance.now() - started;
  if (response.status !== 200) throw new Error(`${url}: ${response.status} ${JSON.stringify(body)}`);
  return { ms, body };
}

/** `count` requests of a listing; `next` says which query to ask for after each page (cursor walks). */
async function timeListing(
  web: WebProcess,
  scenario: string,
  token: string,
  queryOf: (i: number, previous: Page['data'] | null) => string,
) {
  const ms: number[] = [];
  let items = 0;
  let previous: Page['data'] | null = null;
  for (let i = 0; i < REQUESTS; i += 1) {
    const reply = await get(`${web.url}/withdraws?${queryOf(i, previous)}`, token);
    ms.push(reply.ms);
    items += reply.body.data.items.length;
    previous = reply.body.data;
  }
  return summarize(scenario, ms, items);
}

async function timeBatches(web: WebProcess, token: string): Promise<Timing> {
  const ms: number[] = [];
  let accepted = 0;
  for (let b = 0; b < BATCHES; b += 1) {
    const items = Array.from({ length: 1_000 }, (_, i) => ({
      clientReference: `b${b}-i${i}`,
      toAccountId: `bank-${i % 50}`,
      amount: '1.00',
    }));
    const body = JSON.stringify({ items });
    const started = performance.now();
    const response = await fetch(`${web.url}/withdraw/batch`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'idempotent-key': uuidv7() },
      body,
    });
    const reply = (await response.json()) as { data: { items: Array<{ code: number }> } };
    ms.push(performance.now() - started);
    if (response.status !== 202) throw new Error(`batch: ${response.status} ${JSON.stringify(reply).slice(0, 300)}`);
    accepted += reply.data.items.filter((item) => item.code === 0).length;
  }
  return summarize('POST /withdraw/batch, 1,000 items', ms, accepted);
}

async function main() {
  const dataDir = await temporaryDataDir('withdraw-client-api-bench-');
  const parent = path.dirname(dataDir);
  let cluster: EmbeddedCluster | null = null;
  let databases: Databases | null = null;
  let web: WebProcess | null = null;
  try {
    cluster = await startEmbeddedCluster({ dataDir, port: await freePort(), persistent: false, durable: true, log: () => {} });
    const urls = { balanceUrl: cluster.url('client_api_balance'), ledgerUrl: cluster.url('client_api_ledger') };
    await ensureDatabase(cluster.url('postgres'), 'client_api_balance');
    await ensureDatabase(cluster.url('postgres'), 'client_api_ledger');
    await migrateAll(urls);
    log(`loading ${ORDERS} orders for ${USERS} users and ${WHALE} (durable embedded PostgreSQL in ${parent})`);
    await load(urls.balanceUrl);
    const config = loadConfig({
      NODE_ENV: 'test',
      LOG_LEVEL: 'warn',
      PORT: '0',
      BALANCE_DATABASE_URL: urls.balanceUrl,
      LEDGER_DATABASE_URL: urls.ledgerUrl,
      ...SECRETS,
    });
    databases = await createDatabases(urls, {
      poolSizeMax: 10,
      statementTimeoutMs: 30_000,
      applicationName: 'client-api-bench',
      ledgerRole: null,
    });
    web = await startWebProcess({
      config,
      databases,
      balanceUrl: urls.balanceUrl,
      logger: createLogger({ level: 'warn', name: 'bench-web' }),
    });
    const userToken = (userId: string) => signUserToken(SECRETS.AUTH_JWT_SECRET, userId, 3600);
    const whale = await userToken(WHALE);
    const admin = SECRETS.ADMIN_TOKEN;
    const users = await Promise.all(Array.from({ length: 50 }, (_, i) => userToken(`bench-${1 + ((i * 197) % (USERS - 1))}`)));
    // warm up: the first requests compile and fill caches
    await timeListing(web, 'warm-up', whale, () => 'limit=50');
    // one window for the whole walk: a cursor holds the filters it was issued for
    const windowQuery = `limit=50&createdFrom=${new Date(Date.now() - 60 * 86_400_000).toISOString()}&createdTo=${new Date(Date.now() - 30 * 86_400_000).toISOString()}`;
    const walk = (base: string) => (_i: number, previous: Page['data'] | null) =>
      previous?.nextCursor ? `${base}&cursor=${previous.nextCursor}` : base;
    const timings: Timing[] = [
      await timeListingUsers(web, users),
      await timeListing(web, `GET /withdraws first page, a user with ${ORDERS / 10} orders`, whale, () => 'limit=50'),
      await timeListing(web, 'GET /withdraws walking pages by cursor, the same user', whale, walk('limit=50')),
      await timeListing(web, 'GET /withdraws status=failed, walking pages, the same user', whale, walk('limit=50&status=failed')),
      await timeListing(web, 'GET /withdraws status=manual (0.2%), walking pages, the same user', whale, walk('limit=50&status=manual')),
      await timeListing(web, 'GET /withdraws a 30-day window, walking pages, the same user', whale, walk(windowQuery)),
      await timeListing(web, `GET /withdraws admin, every user, walking pages (${ORDERS} orders)`, admin, walk('limit=50')),
      await timeListing(web, 'GET /withdraws admin, status=failed, walking pages', admin, walk('limit=50&status=failed')),
      await timeListing(web, 'GET /withdraws limit=200, the big user', whale, walk('limit=200')),
    ];
    timings.push(await timeBatches(web, whale));
    if (EVENTS > 0) {
      timings.push(
        await timeDeliveries({ web, config, db: databases.balance, balanceUrl: urls.balanceUrl, endpoints: 1, events: EVENTS, offset: 0 }),
      );
      timings.push(
        await timeDeliveries({
          web,
          config,
          db: databases.balance,
          balanceUrl: urls.balanceUrl,
          endpoints: 4,
          events: EVENTS,
          offset: EVENTS,
        }),
      );
    }
    const result = {
      at: new Date().toISOString(),
      machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model ?? 'unknown', node: process.version },
      orders: ORDERS,
      users: USERS,
      durable: true,
      timings,
    };
    const out = path.join(projectRoot, 'bench', 'results');
    mkdirSync(out, { recursive: true });
    const file = path.join(out, `client-api-${result.at.replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
    for (const t of timings)
      process.stdout.write(`${t.scenario.padEnd(72)} n=${t.requests}  p50 ${t.p50Ms} ms  p99 ${t.p99Ms} ms  max ${t.maxMs} ms\n`);
    process.stdout.write(`written to ${path.relative(projectRoot, file)}\n`);
  } finally {
    await web?.close(1_000);
    if (databases) await endDatabases(databases);
    await cluster?.stop();
    await rm(parent, { recursive: true, force: true });
  }
}

/** First pages of many ordinary users, in turn. */
async function timeListingUsers(web: WebProcess, tokens: readonly string[]): Promise<Timing> {
  const ms: number[] = [];
  let items = 0;
  for (let i = 0; i < REQUESTS; i += 1) {
    const reply = await get(`${web.url}/withdraws?limit=50`, tokens[i % tokens.length]!);
    ms.push(reply.ms);
    items += reply.body.data.items.length;
  }
  return summarize('GET /withdraws first page, users with ~90 orders each', ms, items);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    log(`client API bench failed: ${error instanceof Error ? error.stack : String(error)}`);
    process.exit(1);
  },
);

type DeliveryTiming = Timing & { endpoints: number; deliveries: number; perSecond: number };

/** A receiver as a platform service runs one: checks each signature, answers 200, counts events per endpoint path. */
async function startReceiver(): Promise<{
  url: (path: string) => string;
  secrets: Map<string, string>;
  count: () => number;
  bad: () => number;
  close: () => Promise<void>;
}> {
  const secrets = new Map<string, string>();
  const seen = new Set<string>();
  let bad = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const secret = secrets.get(req.url ?? '');
      const header = req.headers['x-signature'];
      const verified = secret ? verifyWebhook(typeof header === 'string' ? header : undefined, raw, [secret], Date.now() / 1000) : null;
      if (!verified?.ok) {
        bad += 1;
        res.writeHead(401).end();
        return;
      }
      seen.add(`${req.url} ${String(req.headers['x-event-id'])}`);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: (p) => `http://127.0.0.1:${port}${p}`,
    secrets,
    count: () => seen.size,
    bad: () => bad,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * `events` processing orders' changes fanned out to `endpoints` new endpoints and delivered by a
 * graphile-worker with the web process's WEBHOOK_* settings; timed from the first fan-out call to
 * the last delivery received. Throws when they have not all arrived within 10 minutes.
 */
async function timeDeliveries(p: {
  web: WebProcess;
  config: Config;
  db: DatabasePool;
  balanceUrl: string;
  endpoints: number;
  events: number;
  offset: number;
}): Promise<DeliveryTiming> {
  const receiver = await startReceiver();
  const client = new pg.Client({ connectionString: p.balanceUrl });
  await client.connect();
  const sender = createWebhookSender(p.config.webhooks);
  const deliver: Task = async (payload, helpers) => {
    await sender.deliverRound(p.db, (payload as { endpointId: string }).endpointId, helpers.abortSignal);
  };
  const concurrency = 8;
  const runner = await run({
    connectionString: p.balanceUrl,
    concurrency,
    noHandleSignals: true,
    pollInterval: 1_000,
    taskList: { webhook__deliver: deliver },
    logger: new GraphileLogger(() => () => {}),
  });
  try {
    for (let e = 0; e < p.endpoints; e += 1) {
      const reply = await fetch(`${p.web.url}/admin/webhook-endpoints`, {
        method: 'POST',
        headers: { authorization: `Bearer ${SECRETS.ADMIN_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ url: receiver.url(`/e${p.offset}-${e}`), events: ['withdraw.processing'] }),
      });
      const body = (await reply.json()) as { data: { secret: string } };
      if (reply.status !== 201) throw new Error(`register: ${reply.status} ${JSON.stringify(body)}`);
      receiver.secrets.set(`/e${p.offset}-${e}`, body.data.secret);
    }
    // the orders' changes, as the state machine writes them (after the endpoints exist)
    const { rows } = await client.query<{ id: string }>(
      `insert into withdraw_status_history (order_id, from_status, to_status, actor, reason)
       select id, 'init', 'processing', 'job', 'bench: submitted'
         from (select id from withdraw_orders order by id offset $2 limit $1) o
       returning order_id as id`,
      [p.events, p.offset],
    );
    if (rows.length !== p.events) throw new Error(`only ${rows.length} orders to announce`);
    const started = performance.now();
    for (let i = 0; i < rows.length; i += 500) {
      await client.query('select webhook_enqueue_events($1::uuid[])', [rows.slice(i, i + 500).map((r) => r.id)]);
    }
    const expected = p.events * p.endpoints;
    const deadline = Date.now() + 600_000;
    while (receiver.count() < expected) {
      if (Date.now() > deadline) throw new Error(`waited 10 minutes for ${expected} deliveries; ${receiver.count()} arrived`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const ms = performance.now() - started;
    if (receiver.bad() > 0) throw new Error(`${receiver.bad()} deliveries with a bad signature`);
    const perSecond = Math.round((expected / ms) * 1000);
    const scenario = `webhooks: ${p.events} events to ${p.endpoints} endpoint(s), delivered (${perSecond}/s)`;
    return { ...summarize(scenario, [ms], expected), endpoints: p.endpoints, deliveries: expected, perSecond };
  } finally {
    await runner.stop();
    await sender.close();
    await client.end();
    await receiver.close();
  }
}
