// `npm run bench:history -- [--orders N[,N...]] [--quick] [--runs R] [--lock FILE]
//                            [--data DIR] [--generate-only] [--reuse DIR[,DIR...]]`
//
// Does the cost of the recurring jobs and the reports grow with history? For each size (default
// 1,000,000 and 10,000,000 orders; --quick: 100,000, the CI smoke check), on an embedded
// PostgreSQL with production durability (fsync, synchronous commit), it generates that much
// history in bulk (bench/historyGenerate.ts: the real tables of both databases, a consistent
// ledger with its daily checkpoints, a share of final, manual and failed orders aged over 90
// days, 1,000 manual and 1,000 stale processing orders open), printing progress, then times:
// one recovery run, one incremental reconciliation run, the provider checks of one
// reconcile__provider run (checks per second), one pruning run, the trial balance, the trial
// balance as of 45 days ago (balances at an instant), a wallet's 30-day statement, and the p99 of
// POST /withdraw at a light load. Generation measures nothing; the timings run in a child process,
// under `flock -x FILE` when --lock is given (alone on the machine), and generation then holds FILE
// shared one step at a time (an exclusive run waiting for it gets in between two steps); run the
// generation under `nice -n 19`. Generation runs without durability (fsync off, minimal WAL) and
// syncs the files when done; the timings run with fsync and synchronous commit on. Writes
// bench/results/history-<timestamp>.json and bench/results/history-latest.json (--quick:
// history-<timestamp>-quick.json and history-latest-quick.json, which git ignores).
//
// Generation and timing can run apart, so that the long generation (not a measurement) can run
// niced beside other work and only the timing holds the machine alone:
//   --data DIR --generate-only   generate each size into DIR/orders-N (kept), time nothing;
//   --reuse DIR/orders-N[,...]   time histories generated before (migrating them first).
// A timing changes its history (recovery resolves, pruning deletes, POST /withdraw adds orders),
// so a kept history is timed once; generate it again to time it again.
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import {
  ensureDatabase,
  startEmbeddedCluster,
  temporaryDataDir,
  unreachableAncestor,
  type EmbeddedCluster,
} from '../app/db/embeddedPostgres.ts';
import { migrateAll } from '../app/db/migrate.ts';
import { createDatabasePool } from '../app/db/pools.ts';
import { createPspSimulator } from '../app/gateway/simulator/pspSimulator.ts';
import { projectRoot } from '../app/paths.ts';
import { runLedgerCheckpoints } from '../reconcile/ledgerCheckpoints.ts';
import { withLock } from './heavyLock.ts';
import {
  generateBalance,
  generateLedger,
  asStep,
  HISTORY_SECRETS,
  planHistory,
  setStepLock,
  vacuumAnalyze,
  type HistoryPlan,
  type TimingInput,
  type TimingResult,
} from './historyGenerate.ts';

const { values: args } = parseArgs({
  options: {
    orders: { type: 'string', default: '1000000,10000000' },
    quick: { type: 'boolean', default: false },
    runs: { type: 'string', default: '3' },
    lock: { type: 'string' },
    data: { type: 'string' },
    'generate-only': { type: 'boolean', default: false },
    reuse: { type: 'string' },
  },
});
if (args['generate-only'] && !args.data) throw new Error('--generate-only needs --data DIR (where the histories are kept)');
if (args.reuse && (args.data || args['generate-only'])) throw new Error('--reuse times kept histories: no --data, no --generate-only');
const SIZES = args.quick ? [100_000] : args.orders.split(',').map(Number);
if (SIZES.some((n) => !Number.isInteger(n) || n < 10_000 || n > 50_000_000)) throw new Error('--orders: integers in 10000..50000000');
const RUNS = args.quick ? 1 : Number(args.runs);
if (!Number.isInteger(RUNS) || RUNS < 1 || RUNS > 20) throw new Error('--runs: 1..20');

const log = (line: string) => process.stderr.write(`${line}\n`);

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

async function postgresVersion(url: string): Promise<string> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<{ v: string }>('select version() as v')).rows[0]!.v;
  } finally {
    await client.end();
  }
}

/** The provider knows what our final orders say, for the orders the timings ask it about. */
async function seedProvider(balanceUrl: string, simUrl: string, sim: ReturnType<typeof createPspSimulator>, plan: HistoryPlan) {
  const client = new pg.Client({ connectionString: balanceUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ reference: string; status: string; amount: string; currency: string; destination: string }>(
      `select o.transaction_id::text as reference, o.status, format_minor(o.amount_minor, o.currency) as amount, o.currency,
              o.to_account_id as destination
         from withdraw_orders o
        where (o.updated_at > $1::timestamptz - interval '51 hours' and o.status in ('success', 'failed'))
           or o.status = 'processing'
        order by o.updated_at`,
      [plan.anchor],
    );
    for (const wanted of ['success', 'failed'] as const) {
      // failed ones are refused definitively, so the provider reports them failed
      sim.setKnobs({ rejectRate: wanted === 'failed' ? 1 : 0 });
      const batch = rows.filter((r) => (wanted === 'failed' ? r.status === 'failed' : r.status !== 'failed'));
      let next = 0;
      const work = async () => {
        while (next < batch.length) {
          const row = batch[next++]!;
          const response = await fetch(`${simUrl}/payouts`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'idempotency-key': row.reference },
            body: JSON.stringify({ reference: row.reference, amount: row.amount, currency: row.currency, destination: row.destination }),
          });
          await response.text();
        }
      };
      await Promise.all(Array.from({ length: 32 }, work));
    }
    sim.setKnobs({ rejectRate: 0 });
    log(`  provider seeded with ${rows.length} payouts`);
  } finally {
    await client.end();
  }
}

function runTimings(input: TimingInput): Promise<TimingResult> {
  const script = path.join(projectRoot, 'bench', 'historyTimings.ts');
  const node = [process.execPath, '--import', 'tsx', script, JSON.stringify(input)];
  const [command, ...rest] = args.lock ? ['flock', '-x', args.lock, ...node] : node;
  return new Promise((resolve, reject) => {
    const child = spawn(command!, rest, { cwd: projectRoot, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`timings exited with ${code}`));
      const last = out.trim().split('\n').at(-1) ?? '';
      resolve(JSON.parse(last) as TimingResult);
    });
  });
}

/**
 * Generation runs on a cluster without durability (fsync off, minimal WAL): a bulk load that is
 * thrown away if it fails. Timing always runs with production durability.
 */
async function startCluster(dataDir: string, purpose: 'generate' | 'time'): Promise<EmbeddedCluster> {
  return startEmbeddedCluster({
    dataDir,
    port: await freePort(),
    persistent: true,
    durable: purpose === 'time',
    settings: purpose === 'generate' ? { wal_level: 'minimal', max_wal_senders: '0', max_wal_size: '2GB' } : {},
    log: (line) => {
      if (/FATAL|PANIC/.test(line)) log(`postgres: ${line}`);
    },
  });
}

const urlsOf = (cluster: EmbeddedCluster) => ({ balanceUrl: cluster.url('history_balance'), ledgerUrl: cluster.url('history_ledger') });
/** a kept history: DIR/orders-N/pg (the cluster) and DIR/orders-N/plan.json (what was generated) */
const planFile = (dataDir: string) => path.join(path.dirname(dataDir), 'plan.json');

async function databaseSizes(url: string): Promise<string> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ name: string; bytes: string }>(
      `select datname as name, pg_database_size(datname)::text as bytes from pg_database where datname like 'history_%' order by 1`,
    );
    return rows.map((r) => `${r.name} ${(Number(r.bytes) / 2 ** 30).toFixed(2)} GiB`).join(', ');
  } finally {
    await client.end();
  }
}

/** Generates `orders` of history into a new cluster at dataDir, leaves it stopped, returns its plan. */
async function generate(orders: number, dataDir: string): Promise<HistoryPlan> {
  if (existsSync(dataDir)) throw new Error(`${dataDir} exists: remove it, or time it with --reuse`);
  const started = performance.now();
  const cluster = await startCluster(dataDir, 'generate');
  try {
    const admin = new pg.Client({ connectionString: cluster.url('postgres') });
    await admin.connect();
    await admin.query(`alter system set max_wal_size = '8GB'`);
    await admin.query(`alter system set checkpoint_timeout = '15min'`);
    await admin.query('select pg_reload_conf()');
    await admin.end();
    const urls = urlsOf(cluster);
    await ensureDatabase(cluster.url('postgres'), 'history_balance');
    await ensureDatabase(cluster.url('postgres'), 'history_ledger');
    await migrateAll(urls);
    const plan = planHistory(orders, new Date().toISOString());
    log(`history: ${orders} orders over ${plan.spanDays} days, ${plan.accounts} wallets (data in ${dataDir})`);
    // the two databases side by side (one session each)
    await Promise.all([
      generateBalance(urls.balanceUrl, plan, (line) => log(`balance ${line}`)),
      generateLedger(urls.ledgerUrl, plan, (line) => log(`ledger  ${line}`)),
    ]);
    const ledger = await createDatabasePool(urls.ledgerUrl, {
      poolSizeMax: 2,
      statementTimeoutMs: 3_600_000,
      applicationName: 'history-bench',
    });
    const closing = performance.now();
    const closed = await asStep(() =>
      runLedgerCheckpoints({
        ledger,
        settleMs: 900_000,
        daysMax: 100_000,
        statementTimeoutMs: 3_600_000,
        now: new Date(plan.anchor),
      }),
    );
    await ledger.end();
    log(`  ledger checkpoints: ${closed.closed.length} days closed, ${((performance.now() - closing) / 1000).toFixed(1)} s`);
    await Promise.all([vacuumAnalyze(urls.balanceUrl, log, 'balance'), vacuumAnalyze(urls.ledgerUrl, log, 'ledger')]);
    const seconds = Math.round((performance.now() - started) / 1000);
    log(
      `generated ${orders} orders in ${seconds} s (${Math.round(orders / seconds)} orders/s); ${await databaseSizes(cluster.url('postgres'))}`,
    );
    await writeFile(planFile(dataDir), `${JSON.stringify({ ...plan, generatedSeconds: seconds }, null, 2)}\n`);
    return plan;
  } finally {
    await cluster.stop();
    // written without fsync: on disk before anything is timed on it
    await asStep(() => new Promise<void>((resolve, reject) => execFile('sync', (error) => (error ? reject(error) : resolve()))));
  }
}

/** Times a history generated before (in this run or an earlier one) at dataDir. */
async function time(dataDir: string, machine: Record<string, unknown>): Promise<TimingResult> {
  const stored = JSON.parse(await readFile(planFile(dataDir), 'utf8')) as HistoryPlan;
  const plan = planHistory(stored.orders, stored.anchor);
  const cluster = await startCluster(dataDir, 'time');
  let sim: ReturnType<typeof createPspSimulator> | null = null;
  try {
    const urls = urlsOf(cluster);
    // a history kept from an earlier build gets this build's migrations and functions
    await withLock(args.lock, 'shared', () => migrateAll(urls));
    machine.postgres ??= await postgresVersion(urls.balanceUrl);
    sim = createPspSimulator({
      port: 0,
      callbackUrl: 'http://127.0.0.1:9/withdraw/notify',
      webhookSecret: HISTORY_SECRETS.PSP_WEBHOOK_SECRET,
      knobs: { dropCallbackRate: 1 },
      seed: 1,
    });
    const { url: simUrl } = await sim.start();
    await withLock(args.lock, 'shared', () => seedProvider(urls.balanceUrl, simUrl, sim!, plan));
    log(`timing ${plan.orders} orders${args.lock ? ` (waiting for the exclusive lock ${args.lock})` : ''}`);
    return await runTimings({ ...urls, simUrl, plan, runs: RUNS });
  } finally {
    await sim?.stop();
    await cluster.stop();
  }
}

async function main() {
  const machine: Record<string, unknown> = {
    cores: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGb: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    durability: 'fsync on, synchronous_commit on',
  };
  // generation holds the lock shared, one step at a time; the timings exclusive (runTimings)
  setStepLock(args.lock);
  const history: TimingResult[] = [];
  if (args.reuse) {
    for (const dir of args.reuse.split(',')) history.push(await time(path.resolve(dir, 'pg'), machine));
  } else {
    for (const orders of SIZES) {
      const kept = args.data ? path.resolve(args.data, `orders-${orders}`, 'pg') : null;
      if (kept) {
        await mkdir(path.dirname(kept), { recursive: true, mode: 0o755 });
        const blocked = unreachableAncestor(kept);
        if (blocked) throw new Error(`--data: the postgres user cannot reach ${kept} (${blocked} is not world-searchable)`);
      }
      const dataDir = kept ?? (await temporaryDataDir('withdraw-history-bench-'));
      try {
        await generate(orders, dataDir);
        if (!args['generate-only']) history.push(await time(dataDir, machine));
      } finally {
        if (!kept) await rm(path.dirname(dataDir), { recursive: true, force: true });
      }
    }
    if (args['generate-only']) {
      log(`kept in ${path.resolve(args.data!)}; time with --reuse ${SIZES.map((n) => path.resolve(args.data!, `orders-${n}`)).join(',')}`);
      return;
    }
  }
  const result = { machine, history };
  const dir = path.join(projectRoot, 'bench', 'results');
  await mkdir(dir, { recursive: true });
  const text = `${JSON.stringify(result, null, 2)}\n`;
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const suffix = args.quick ? '-quick' : '';
  await writeFile(path.join(dir, `history-${stamp}${suffix}.json`), text);
  await writeFile(path.join(dir, `history-latest${suffix}.json`), text);
  process.stdout.write(text);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    log(`bench:history failed: ${error instanceof Error ? error.stack : String(error)}`);
    process.exit(1);
  },
);
