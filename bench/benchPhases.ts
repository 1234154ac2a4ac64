// The benchmark's phases. Each returns its figures; bench.ts puts them together.
import autocannon from 'autocannon';
import { v7 as uuidv7 } from 'uuid';
import { createDatabases, endDatabases } from '../app/db/pools.ts';
import { allInvariants } from '../reconcile/invariants.ts';
import { verifyLedger } from '../reconcile/ledgerVerify.ts';
import { CEILING_DB, setFaults, waitForQuiet, type BenchSystem } from './benchSystem.ts';
import { PLACE_ORDER_SCRIPT, RESERVATION_SCRIPT, runPgbench } from './ceiling.ts';
import type { CpuWindow } from './cpuMeter.ts';
import { createLoadgen, percentile, type BenchUser, type LoadResult } from './loadgen.ts';
import { createLockWaitSampler, type CountersWindow } from './pgCounters.ts';
import { peakRssMb, treePids } from './procStats.ts';

export type Log = (line: string) => void;

const round = (value: number, digits = 2) => {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
};

/** The mild fault profile of production (issue: 2% 5xx, 2% failed after acceptance, 5% duplicate and 1% dropped callbacks). */
export const MILD_FAULTS = { errorRate: 0.02, failAfterAcceptRate: 0.02, duplicateCallbackRate: 0.05, dropCallbackRate: 0.01 };
const NO_FAULTS = { errorRate: 0, failAfterAcceptRate: 0, duplicateCallbackRate: 0, dropCallbackRate: 0 };

async function pgbenchRun(bench: BenchSystem, durationS: number, script: string) {
  const end = await bench.cpu.window();
  const run = await runPgbench({ ...bench.pgConnection, database: CEILING_DB, clients: 64, durationS, script });
  const cpu = await end();
  // everything PostgreSQL spent meanwhile (the system is idle): backends and background
  const pgMs = cpu.postgres + cpu.postgresByClient.ceiling;
  return { ...run, tps: round(run.tps, 0), pgCpuMsPerTx: round(pgMs / run.transactions, 3), foreignMs: round(cpu.foreignMs, 0) };
}

export async function phaseCeiling(bench: BenchSystem, durationS: number, log: Log) {
  log(`ceiling: pgbench, the reservation as one prepared statement, 64 clients, ${durationS} s`);
  const reservation = await pgbenchRun(bench, durationS, RESERVATION_SCRIPT);
  log(`   ${reservation.tps} TPS, ${reservation.pgCpuMsPerTx} PostgreSQL CPU-ms per transaction`);
  log(`ceiling: an order placed as one prepared statement (reservation, order, key, outbox event), ${durationS} s`);
  const placeOrder = await pgbenchRun(bench, durationS, PLACE_ORDER_SCRIPT);
  log(`   ${placeOrder.tps} TPS, ${placeOrder.pgCpuMsPerTx} PostgreSQL CPU-ms per transaction`);
  return { ...reservation, placeOrder };
}

export function perWithdrawal(cpu: CpuWindow, count: number) {
  const per = (ms: number) => round(ms / Math.max(1, count), 3);
  return {
    web: per(cpu.components.web),
    worker: per(cpu.components.worker),
    postgres: per(cpu.postgres),
    psp: per(cpu.components.psp),
    loadgen: per(cpu.components.loadgen + cpu.postgresByClient.loadgen),
    system: per(cpu.system),
    postgresByClient: {
      web: per(cpu.postgresByClient.web),
      worker: per(cpu.postgresByClient.worker),
      background: per(cpu.postgresByClient.background),
      other: per(cpu.postgresByClient.other),
    },
    kernelShare: round(cpu.kernelShare, 3),
    /** CPU other users of the machine took meanwhile, per withdrawal: a figure measured alone has it near 0 */
    foreign: per(cpu.foreignMs),
  };
}

export function countersPerWithdrawal(c: CountersWindow, count: number) {
  const per = (value: number) => round(value / Math.max(1, count), 2);
  return {
    walBytesPerWithdrawal: { cluster: per(c.walBytes.cluster), balance: per(c.walBytes.balance), ledger: per(c.walBytes.ledger) },
    statementsPerWithdrawal: {
      balance: { topLevel: per(c.statements.balance.topLevel), nested: per(c.statements.balance.nested) },
      ledger: { topLevel: per(c.statements.ledger.topLevel), nested: per(c.statements.ledger.nested) },
    },
    transactionsPerWithdrawal: { balance: per(c.transactions.balance), ledger: per(c.transactions.ledger) },
    rowsWrittenPerWithdrawal: {
      balance: per(c.rowsWritten.balance),
      ledger: per(c.rowsWritten.ledger),
      byTable: Object.fromEntries(Object.entries(c.rowsWrittenByTable).map(([table, rows]) => [table, per(rows)])),
    },
    topStatements: c.topStatements.map((s) => ({ ...s, totalMs: round(s.totalMs, 1), msPerWithdrawal: per(s.totalMs) })),
  };
}

export async function phaseAccept(
  bench: BenchSystem,
  users: readonly BenchUser[],
  settings: { durationS: number; connections: number },
  log: Log,
) {
  log(`accept: POST /withdraw for ${settings.durationS} s, ${settings.connections} connections, the worker draining`);
  const locks = createLockWaitSampler({ url: bench.urls.balanceUrl, everyMs: 10 });
  await locks.start();
  const before = await bench.counters.snapshot();
  let next = 0;
  const result = await autocannon({
    url: bench.system.webUrl,
    connections: settings.connections,
    duration: settings.durationS,
    requests: [
      {
        method: 'POST',
        path: '/withdraw',
        setupRequest: (request) => {
          const user = users[next++ % users.length]!;
          return {
            ...request,
            headers: { 'content-type': 'application/json', authorization: `Bearer ${user.token}`, 'idempotent-key': uuidv7() },
            body: JSON.stringify({ toAccountId: 'bench-bank', amount: '0.01' }),
          };
        },
      },
    ],
  });
  const after = await bench.counters.snapshot();
  await locks.stop();
  const requests = result.requests.total;
  const create = bench.counters.diff(before, after).topStatements.find((s) => /withdraw_create/.test(s.query));
  const accept = {
    rps: round(result.requests.average, 0),
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    maxMs: result.latency.max,
    errors: result.errors + result.timeouts + result.non2xx,
    requests,
    lockWaitMsPerRequest: round(locks.clientMs('web') / Math.max(1, requests), 3),
    lockWaits: locks.read(),
    dbMsPerRequest: create ? round(create.totalMs / Math.max(1, create.calls), 3) : null,
  };
  log(
    `   ${accept.rps} req/s, p50 ${accept.p50Ms} ms, p99 ${accept.p99Ms} ms, lock wait ${accept.lockWaitMsPerRequest} ms/request; draining`,
  );
  const drainMs = await waitForQuiet(bench, 900_000);
  return { ...accept, drainAfterMs: drainMs };
}

/** Orders' final states and created → final latency. */
async function finalLatencies(bench: BenchSystem, orderIds: readonly string[]) {
  const { rows } = await bench.balance.query<{ status: string; ms: number }>(
    `select o.status, extract(epoch from (o.updated_at - o.created_at)) * 1000 as ms from withdraw_orders o where o.id = any($1::uuid[])`,
    [orderIds],
  );
  const latencies = rows.map((r) => Number(r.ms)).sort((a, b) => a - b);
  const statuses: Record<string, number> = {};
  for (const r of rows) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
  return { statuses, p50: round(percentile(latencies, 50), 0), p99: round(percentile(latencies, 99), 0) };
}

async function waitForFinal(bench: BenchSystem, orderIds: readonly string[], timeoutMs: number, log: Log): Promise<void> {
  const started = Date.now();
  let lastReport = Date.now();
  for (;;) {
    const { rows } = await bench.balance.query<{ open: number }>(
      `select count(*)::int as open from withdraw_orders where id = any($1::uuid[]) and status in ('init', 'processing')`,
      [orderIds],
    );
    const open = rows[0]!.open;
    if (open === 0) return;
    if (Date.now() - started > timeoutMs) throw new Error(`${open} orders still open after ${timeoutMs} ms`);
    if (Date.now() - lastReport > 5_000) {
      lastReport = Date.now();
      log(`   … ${open} of ${orderIds.length} not final yet`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Counters (WAL, statements, rows) lag up to 10 s behind (PostgreSQL flushes table statistics lazily): let them settle. */
export async function settleCounters(bench: BenchSystem, quick: boolean) {
  await new Promise((resolve) => setTimeout(resolve, quick ? 1_000 : 11_000));
  return bench.counters.snapshot();
}

export async function phaseEndToEnd(
  bench: BenchSystem,
  users: readonly BenchUser[],
  settings: { count: number; connections: number; faults: boolean; quick: boolean },
  log: Log,
) {
  const label = settings.faults ? 'endToEndWithFaults' : 'endToEnd';
  log(
    `${label}: ${settings.count} withdrawals, ${settings.connections} in flight${settings.faults ? `, faults ${JSON.stringify(MILD_FAULTS)}` : ''}`,
  );
  await setFaults(bench, settings.faults ? MILD_FAULTS : NO_FAULTS);
  const countersBefore = await settleCounters(bench, settings.quick);
  const locks = createLockWaitSampler({ url: bench.urls.balanceUrl, everyMs: 10 });
  await locks.start();
  const loadgen = createLoadgen({ url: bench.system.webUrl, users, connections: settings.connections });
  const endCpu = await bench.cpu.window();
  const t0 = performance.now();
  const load = await loadgen.closedLoop(settings.count, settings.connections, '0.02', (done) => log(`   … ${done} accepted`));
  await waitForFinal(bench, load.orderIds, 900_000, log);
  const allFinalMs = performance.now() - t0;
  await locks.stop();
  await loadgen.close();
  // the whole life of every withdrawal: until nothing is left (the last settlements, relays, jobs)
  await waitForQuiet(bench, 900_000);
  const cpu = await endCpu();
  await setFaults(bench, NO_FAULTS);
  const countersAfter = await settleCounters(bench, settings.quick);
  const finals = await finalLatencies(bench, load.orderIds);
  const n = load.orderIds.length;
  const result = {
    perSec: round((n / allFinalMs) * 1000, 0),
    createdToFinalP50Ms: finals.p50,
    createdToFinalP99Ms: finals.p99,
    orders: n,
    rejected: load.rejected,
    statuses: finals.statuses,
    firstRequestToLastFinalMs: round(allFinalMs, 0),
    cpuMsPerWithdrawal: perWithdrawal(cpu, n),
    ...countersPerWithdrawal(bench.counters.diff(countersBefore, countersAfter), n),
    lockWaitMsPerWithdrawal: round(locks.clientMs('web') / Math.max(1, n), 3),
    lockWaits: locks.read(),
  };
  log(`   ${result.perSec}/s end to end, created → final p50 ${result.createdToFinalP50Ms} ms, p99 ${result.createdToFinalP99Ms} ms;`);
  log(
    `   CPU-ms per withdrawal: system ${result.cpuMsPerWithdrawal.system} (web ${result.cpuMsPerWithdrawal.web}, worker ${result.cpuMsPerWithdrawal.worker}, postgres ${result.cpuMsPerWithdrawal.postgres}, psp ${result.cpuMsPerWithdrawal.psp}); WAL ${result.walBytesPerWithdrawal.cluster} B`,
  );
  return result;
}

/** The asynchronous pipeline alone: withdrawals queued with the workers stopped, then drained. */
export async function phasePipeline(
  bench: BenchSystem,
  users: readonly BenchUser[],
  settings: { count: number; connections: number },
  log: Log,
) {
  log(`pipeline: ${settings.count} withdrawals queued with the workers stopped, then drained`);
  const workers = bench.system.children.filter((c) => c.name.startsWith('worker-')).map((c) => c.name);
  for (const name of workers) await bench.system.kill(name, 'SIGTERM');
  const loadgen = createLoadgen({ url: bench.system.webUrl, users, connections: settings.connections });
  await loadgen.closedLoop(settings.count, settings.connections, '0.03');
  await loadgen.close();
  const t0 = performance.now();
  for (const name of workers) bench.system.start(name);
  const drainMs = await waitForQuiet(bench, 900_000);
  const result = { perSec: round((settings.count / (performance.now() - t0)) * 1000, 0), orders: settings.count, drainMs };
  log(`   ${result.perSec} withdrawals/s (including the workers' start)`);
  return result;
}

export async function phaseLatency(
  bench: BenchSystem,
  users: readonly BenchUser[],
  settings: { rate: number; durationS: number },
  log: Log,
) {
  log(`latency: ${settings.rate}/s offered for ${settings.durationS} s`);
  const loadgen = createLoadgen({ url: bench.system.webUrl, users, connections: 128 });
  const load = await loadgen.openLoop(settings.rate, settings.durationS * 1000, '0.04');
  await loadgen.close();
  await waitForFinal(bench, load.orderIds, 900_000, log);
  const { rows } = await bench.balance.query<{ toProcessing: number | null; toFinal: number | null }>(
    `select extract(epoch from (hp.at - o.created_at)) * 1000 as "toProcessing",
            extract(epoch from (hf.at - i.at)) * 1000 as "toFinal"
       from withdraw_orders o
       left join lateral (select min(h.created_at) as at from withdraw_status_history h
                           where h.order_id = o.id and h.to_status = 'processing') hp on true
       left join lateral (select min(h.created_at) as at from withdraw_status_history h
                           where h.order_id = o.id and h.to_status in ('success', 'failed')) hf on true
       left join lateral (select min(g.received_at) as at from gateway_inbox g where g.reference = o.transaction_id::text) i on true
      where o.id = any($1::uuid[])`,
    [load.orderIds],
  );
  const sorted = (values: Array<number | null>) =>
    values
      .filter((v): v is number => v !== null)
      .map(Number)
      .sort((a, b) => a - b);
  const toProcessing = sorted(rows.map((r) => r.toProcessing));
  const toFinal = sorted(rows.map((r) => r.toFinal));
  const accept = [...load.latenciesMs].sort((a, b) => a - b);
  const result = {
    offeredPerSec: settings.rate,
    acceptedPerSec: round(load.orderIds.length / settings.durationS, 0),
    acceptP50Ms: round(percentile(accept, 50), 1),
    acceptP99Ms: round(percentile(accept, 99), 1),
    acceptToProcessingP50Ms: round(percentile(toProcessing, 50), 0),
    acceptToProcessingP99Ms: round(percentile(toProcessing, 99), 0),
    notifyToFinalP50Ms: round(percentile(toFinal, 50), 0),
    notifyToFinalP99Ms: round(percentile(toFinal, 99), 0),
    orders: load.orderIds.length,
    rejected: load.rejected,
  };
  log(
    `   accept p99 ${result.acceptP99Ms} ms; accept → processing p99 ${result.acceptToProcessingP99Ms} ms; notify → final p99 ${result.notifyToFinalP99Ms} ms`,
  );
  return result;
}

export async function phaseSustained(
  bench: BenchSystem,
  users: readonly BenchUser[],
  settings: { rate: number; durationS: number; quick: boolean },
  log: Log,
) {
  log(`sustained: ${settings.rate}/s offered for ${settings.durationS} s, then every order final, then the invariants`);
  const loadgen = createLoadgen({ url: bench.system.webUrl, users, connections: 256 });
  const endCpu = await bench.cpu.window();
  const startedAt = Date.now();
  const load: LoadResult = await loadgen.openLoop(settings.rate, settings.durationS * 1000, '0.05', (sent) => log(`   … ${sent} sent`));
  const offeredUntil = startedAt + settings.durationS * 1000;
  await loadgen.close();
  await waitForFinal(bench, load.orderIds, 900_000, log);
  const drainAfterMs = Date.now() - offeredUntil;
  await waitForQuiet(bench, 900_000);
  const cpu = await endCpu();
  const { rows } = await bench.balance.query<{ inWindow: number; success: number }>(
    `select count(*) filter (where status = 'success' and updated_at <= to_timestamp($2::float8 / 1000))::int as "inWindow",
            count(*) filter (where status = 'success')::int as success
       from withdraw_orders where id = any($1::uuid[])`,
    [load.orderIds, offeredUntil],
  );
  const accept = [...load.latenciesMs].sort((a, b) => a - b);
  const checks = await checkInvariants(bench);
  const result = {
    offeredPerSec: settings.rate,
    durationS: settings.durationS,
    acceptedPerSec: round(load.orderIds.length / settings.durationS, 0),
    successPerSecInWindow: round(rows[0]!.inWindow / settings.durationS, 0),
    success: rows[0]!.success,
    orders: load.orderIds.length,
    rejected: load.rejected,
    acceptP99Ms: round(percentile(accept, 99), 1),
    drainAfterMs,
    cpuMsPerWithdrawal: perWithdrawal(cpu, load.orderIds.length),
    ...checks,
  };
  log(
    `   ${result.successPerSecInWindow}/s reached success within the window; drained ${drainAfterMs} ms after; invariants ${checks.invariantViolations === 0 ? 'hold' : 'VIOLATED'}, ledger ${checks.ledgerClean ? 'verified' : 'BROKEN'}`,
  );
  return result;
}

export async function checkInvariants(bench: BenchSystem) {
  const databases = await createDatabases(bench.urls, {
    poolSizeMax: 2,
    statementTimeoutMs: 600_000,
    applicationName: 'withdraw-bench-checks',
  });
  try {
    const violations = await allInvariants(databases.balance, databases.ledger);
    const ledger = await verifyLedger(databases.ledger);
    return {
      invariantViolations: violations.length,
      violations: violations.slice(0, 10),
      ledgerClean: ledger.clean,
      ledgerBreaks: ledger.breakCount,
    };
  } finally {
    await endDatabases(databases);
  }
}

export function peakRss(bench: BenchSystem, previous: { webMb: number; workerMb: number }) {
  const of = (prefix: string) => {
    let max = 0;
    for (const pid of bench.childPids(prefix)) max = Math.max(max, peakRssMb(treePids(pid)).maxMb);
    return max;
  };
  return { webMb: round(Math.max(previous.webMb, of('web')), 0), workerMb: round(Math.max(previous.workerMb, of('worker-')), 0) };
}
