// `npm run bench:history -- [--orders N[,N...]] [--quick] [--runs R] [--lock FILE]`
//
// Does the cost of the recurring jobs and the reports grow with history? For each size (default
// 1,000,000 and 10,000,000 orders; --quick: 100,000, the CI smoke check), on a fresh embedded
// PostgreSQL with production durability (fsync, synchronous commit), it generates that much
// history in bulk (bench/historyGenerate.ts: the real tables of both databases, a consistent
// ledger with its daily checkpoints, a share of final, manual and failed orders aged over 90
// days, 1,000 manual and 1,000 stale processing orders open), printing progress, then times:
// one recovery run, one incremental reconciliation run, the provider checks of one
// reconcile__provider run (checks per second), one pruning run, the trial balance, the trial
// balance as of 45 days ago (balances at an instant), a wallet's 30-day statement, and the p99 of
// POST /withdraw at a light load. Generation measures nothing; the timings run in a child process,
// under `flock -x FILE` when --lock is given (alone on the machine). Writes
// bench/results/history-<timestamp>.json and bench/results/history-latest.json.
import { spawn } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { ensureDatabase, startEmbeddedCluster, temporaryDataDir, type EmbeddedCluster } from '../app/db/embeddedPostgres.ts';
import { migrateAll } from '../app/db/migrate.ts';
import { createDatabasePool } from '../app/db/pools.ts';
import { createPspSimulator } from '../app/gateway/simulator/pspSimulator.ts';
import { projectRoot } from '../app/paths.ts';
import { runLedgerCheckpoints } from '../reconcile/ledgerCheckpoints.ts';
import {
  generateBalance,
  generateLedger,
  HISTORY_SECRETS,
  planHistory,
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
  },
});
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

async function oneSize(orders: number, machine: Record<string, unknown>): Promise<TimingResult> {
  const dataDir = await temporaryDataDir('withdraw-history-bench-');
  let cluster: EmbeddedCluster | null = null;
  let sim: ReturnType<typeof createPspSimulator> | null = null;
  const started = performance.now();
  try {
    cluster = await startEmbeddedCluster({
      dataDir,
      port: await freePort(),
      persistent: false,
      durable: true,
      log: (line) => {
        if (/FATAL|PANIC/.test(line)) log(`postgres: ${line}`);
      },
    });
    const admin = new pg.Client({ connectionString: cluster.url('postgres') });
    await admin.connect();
    await admin.query(`alter system set max_wal_size = '8GB'`);
    await admin.query(`alter system set checkpoint_timeout = '15min'`);
    await admin.query('select pg_reload_conf()');
    await admin.end();
    const urls = { balanceUrl: cluster.url('history_balance'), ledgerUrl: cluster.url('history_ledger') };
    await ensureDatabase(cluster.url('postgres'), 'history_balance');
    await ensureDatabase(cluster.url('postgres'), 'history_ledger');
    await migrateAll(urls);
    machine.postgres ??= await postgresVersion(urls.balanceUrl);
    const plan = planHistory(orders, new Date().toISOString());
    log(`history: ${orders} orders over ${plan.spanDays} days, ${plan.accounts} wallets (data in ${path.dirname(dataDir)})`);
    log('balance:');
    await generateBalance(urls.balanceUrl, plan, log);
    log('ledger:');
    await generateLedger(urls.ledgerUrl, plan, log);
    const ledger = await createDatabasePool(urls.ledgerUrl, {
      poolSizeMax: 2,
      statementTimeoutMs: 3_600_000,
      applicationName: 'history-bench',
    });
    const closing = performance.now();
    const closed = await runLedgerCheckpoints({
      ledger,
      settleMs: 900_000,
      daysMax: 100_000,
      statementTimeoutMs: 3_600_000,
      now: new Date(plan.anchor),
    });
    await ledger.end();
    log(`  ledger checkpoints: ${closed.closed.length} days closed, ${((performance.now() - closing) / 1000).toFixed(1)} s`);
    await vacuumAnalyze(urls.balanceUrl, log, 'balance');
    await vacuumAnalyze(urls.ledgerUrl, log, 'ledger');
    sim = createPspSimulator({
      port: 0,
      callbackUrl: 'http://127.0.0.1:9/withdraw/notify',
      webhookSecret: HISTORY_SECRETS.PSP_WEBHOOK_SECRET,
      knobs: { dropCallbackRate: 1 },
      seed: 1,
    });
    const { url: simUrl } = await sim.start();
    await seedProvider(urls.balanceUrl, simUrl, sim, plan);
    log(
      `generated in ${Math.round((performance.now() - started) / 1000)} s; timing${args.lock ? ` (waiting for the exclusive lock ${args.lock})` : ''}`,
    );
    return await runTimings({ ...urls, simUrl, plan, runs: RUNS });
  } finally {
    await sim?.stop();
    await cluster?.stop();
    await rm(path.dirname(dataDir), { recursive: true, force: true });
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
  const history: TimingResult[] = [];
  for (const orders of SIZES) history.push(await oneSize(orders, machine));
  const result = { machine, history };
  const dir = path.join(projectRoot, 'bench', 'results');
  await mkdir(dir, { recursive: true });
  const text = `${JSON.stringify(result, null, 2)}\n`;
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  await writeFile(path.join(dir, `history-${stamp}.json`), text);
  await writeFile(path.join(dir, 'history-latest.json'), text);
  process.stdout.write(text);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    log(`bench:history failed: ${error instanceof Error ? error.stack : String(error)}`);
    process.exit(1);
  },
);
