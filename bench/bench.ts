// `npm run bench -- [--quick] [--label NAME] [--duration S] [--connections C] [--users U] [--e2e N]
//                   [--backlog N] [--workers K] [--latency-rate R] [--sustained-rate R] [--sustained S]
//                   [--skip phase,phase]`
//
// What a withdrawal costs, measured from outside on this machine, every process real: an embedded
// PostgreSQL of its own (fsync and synchronous_commit on, as in production; pg_stat_statements
// loaded), web, K workers and the provider simulator. Phases:
//   ceiling      pgbench: the reservation as one prepared statement, 64 clients (the same cluster)
//   accept       POST /withdraw for S seconds with C connections while the worker drains
//   endToEnd     N withdrawals, C in flight, first request → every order final: throughput, latency,
//                and per withdrawal CPU-ms of every process, WAL, statements, transactions, rows, lock waits
//   endToEndWithFaults   the same with the mild fault profile of the simulator
//   pipeline     N withdrawals queued with the workers stopped, then drained
//   latency      R/s offered (open loop): accept → processing and notify → final
//   sustained    R/s offered for S seconds: how many reach success within the window; invariants after
// Writes bench/results/<timestamp>[-label].json and .md, and latest.json / latest.md. Never run as
// a timed assertion in `npm test`; `--quick` only proves the harness works (.ci/run).
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { projectRoot } from '../app/paths.ts';
import { renderMarkdown } from './benchReport.ts';
import {
  checkInvariants,
  peakRss,
  phaseAccept,
  phaseCeiling,
  phaseEndToEnd,
  phaseLatency,
  phasePipeline,
  phaseSustained,
  type Log,
} from './benchPhases.ts';
import { BENCH_CHILD_ENV, seedUsers, startBenchSystem, waitForQuiet, waitForQuietMachine } from './benchSystem.ts';
import { pgbenchVersion } from './ceiling.ts';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    label: { type: 'string' },
    duration: { type: 'string' },
    connections: { type: 'string', default: '64' },
    users: { type: 'string' },
    e2e: { type: 'string' },
    backlog: { type: 'string' },
    workers: { type: 'string', default: '1' },
    'latency-rate': { type: 'string' },
    'sustained-rate': { type: 'string' },
    sustained: { type: 'string' },
    ceiling: { type: 'string' },
    skip: { type: 'string', default: '' },
  },
});
const quick = args.quick;
const pick = (value: string | undefined, full: number, fast: number) => (value === undefined ? (quick ? fast : full) : Number(value));
const settings = {
  quick,
  ceilingS: pick(args.ceiling, 15, 3),
  acceptS: pick(args.duration, 15, 3),
  connections: Number(args.connections),
  users: pick(args.users, 200, 20),
  e2e: pick(args.e2e, 5000, 300),
  backlog: pick(args.backlog, 5000, 300),
  workers: Number(args.workers),
  latencyRate: pick(args['latency-rate'], 500, 100),
  latencyS: quick ? 3 : 20,
  sustainedRate: pick(args['sustained-rate'], 1000, 100),
  sustainedS: pick(args.sustained, 60, 3),
  skip: new Set(args.skip.split(',').filter(Boolean)),
  childEnv: BENCH_CHILD_ENV,
};

const log: Log = (message) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${message}\n`);

function git(...argv: string[]): string | null {
  try {
    return execFileSync('git', argv, { cwd: projectRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

async function machine(bench: Awaited<ReturnType<typeof startBenchSystem>>) {
  const { rows } = await bench.admin.query<{ version: string }>('select version()');
  return {
    cores: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGb: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    postgres: rows[0]!.version.split(' on ')[0],
    pgbench: await pgbenchVersion(),
    durability: { fsync: 'on', synchronousCommit: 'on' },
    loadAverageAtStart: os.loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

function writeResults(report: Record<string, unknown>): string {
  const dir = path.join(projectRoot, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const stamp = new Date()
    .toISOString()
    .replace(/[:]/g, '-')
    .replace(/\.\d+Z$/, 'Z');
  const name = [stamp, quick ? 'quick' : null, args.label ?? null].filter(Boolean).join('-');
  const json = `${JSON.stringify(report, null, 2)}\n`;
  const markdown = renderMarkdown(report, name);
  writeFileSync(path.join(dir, `${name}.json`), json);
  writeFileSync(path.join(dir, `${name}.md`), markdown);
  writeFileSync(path.join(dir, 'latest.json'), json);
  writeFileSync(path.join(dir, 'latest.md'), markdown);
  return path.join(dir, `${name}.json`);
}

async function main() {
  if (!(await pgbenchVersion())) throw new Error('pgbench is not installed: apt-get install postgresql-client (see .ci/run)');
  const startedAt = new Date().toISOString();
  const bench = await startBenchSystem({ workers: settings.workers, log, childEnv: settings.childEnv });
  const report: Record<string, unknown> = {
    startedAt,
    commit: git('rev-parse', '--short', 'HEAD'),
    dirty: (git('status', '--porcelain', '--untracked-files=no') ?? '') !== '',
    label: args.label ?? null,
    settings: { ...settings, skip: [...settings.skip] },
  };
  try {
    report.machine = await machine(bench);
    // other users of the machine (a compiler, a test run outside the lock) would be measured too
    const quietWaitMs = quick ? 0 : 180_000;
    const waited: Record<string, number> = { ceiling: await waitForQuietMachine(bench, quietWaitMs, log) };
    report.waitedForQuietMachineMs = waited;
    let ceiling = await phaseCeiling(bench, settings.ceilingS, log);
    for (let attempt = 2; !quick && attempt <= 3 && ceiling.foreignMs > 200 * settings.ceilingS; attempt += 1) {
      log(`   other processes took ${Math.round(ceiling.foreignMs / settings.ceilingS) / 1000} cores meanwhile: the ceiling again`);
      waited.ceiling = (waited.ceiling ?? 0) + (await waitForQuietMachine(bench, quietWaitMs, log));
      ceiling = await phaseCeiling(bench, settings.ceilingS, log);
    }
    report.ceiling = ceiling;
    log(`seeding ${settings.users} funded users`);
    const users = await seedUsers(bench, settings.users);
    await waitForQuiet(bench, 120_000);
    let rss = { webMb: 0, workerMb: 0 };
    // a phase that other users of the machine disturbed (more than a fifth of a core, on average) is run again
    const foreignCoresMax = 0.2;
    const run = async <T extends object>(name: string, phase: () => Promise<T>, attemptsMax = 3): Promise<T | null> => {
      if (settings.skip.has(name)) return null;
      for (let attempt = 1; ; attempt += 1) {
        waited[name] = (waited[name] ?? 0) + (await waitForQuietMachine(bench, quietWaitMs, log));
        const end = await bench.cpu.window();
        const result = await phase();
        const window = await end();
        rss = peakRss(bench, rss);
        const foreignCores = Math.round((window.foreignMs / Math.max(1, window.wallMs)) * 100) / 100;
        if (quick || foreignCores <= foreignCoresMax || attempt >= attemptsMax) return { ...result, foreignCores, attempts: attempt };
        log(`   other processes took ${foreignCores} cores meanwhile: ${name} again`);
      }
    };
    const accept = await run('accept', () =>
      phaseAccept(bench, users, { durationS: settings.acceptS, connections: settings.connections }, log),
    );
    report.accept = accept && { ...accept, ratioToCeiling: Math.round((accept.rps / ceiling.tps) * 1000) / 1000 };
    const e2e = { connections: settings.connections, count: settings.e2e, quick };
    const endToEnd = await run('endToEnd', () => phaseEndToEnd(bench, users, { ...e2e, faults: false }, log));
    report.endToEnd = endToEnd;
    report.endToEndWithFaults = await run('endToEndWithFaults', () => phaseEndToEnd(bench, users, { ...e2e, faults: true }, log));
    report.pipeline = await run('pipeline', () =>
      phasePipeline(bench, users, { count: settings.backlog, connections: settings.connections }, log),
    );
    report.latency = await run('latency', () =>
      phaseLatency(bench, users, { rate: settings.latencyRate, durationS: settings.latencyS }, log),
    );
    report.sustained = await run(
      'sustained',
      () => phaseSustained(bench, users, { rate: settings.sustainedRate, durationS: settings.sustainedS, quick }, log),
      1,
    );
    if (!report.sustained) {
      // I5 compares the two databases: only once nothing is in flight
      await waitForQuiet(bench, 900_000);
      report.checks = await checkInvariants(bench);
    }
    // the headline figures, from the fault-free end-to-end phase (the accept phase for lock waits)
    report.cpuMsPerWithdrawal = endToEnd?.cpuMsPerWithdrawal ?? null;
    report.walBytesPerWithdrawal = endToEnd?.walBytesPerWithdrawal ?? null;
    report.statementsPerWithdrawal = endToEnd?.statementsPerWithdrawal ?? null;
    report.rowsWrittenPerWithdrawal = endToEnd?.rowsWrittenPerWithdrawal ?? null;
    report.lockWaitMsPerWithdrawal = accept?.lockWaitMsPerRequest ?? endToEnd?.lockWaitMsPerWithdrawal ?? null;
    report.rss = rss;
  } finally {
    await bench.stop().catch((error: unknown) => log(`stopping: ${String(error)}`));
  }
  const file = writeResults(report);
  log(`results: ${path.relative(projectRoot, file)} (and bench/results/latest.json, latest.md)`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    log(`bench failed: ${error instanceof Error ? error.stack : String(error)}`);
    process.exit(1);
  },
);
