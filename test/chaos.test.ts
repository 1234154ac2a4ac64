// A short chaos run inside `npm test`, so every change is checked against faults: real processes,
// SIGKILLs, PostgreSQL restarts, killed connections, a misbehaving provider and an attacker.
// `npm run chaos -- --orders 10000 --seed 1` is the long version.
import test from 'ava';
import { FAULT_KINDS, faultSchedule } from '../chaos/faultSchedule.ts';
import { runChaos } from '../chaos/chaosRun.ts';

const SEED = Number(process.env.CHAOS_SEED ?? 20261125);

test('when the same seed is given, then the fault schedule is the same, and it covers every fault kind', (t) => {
  const a = faultSchedule({ seed: SEED, durationMs: 25_000, workers: 2 });
  const b = faultSchedule({ seed: SEED, durationMs: 25_000, workers: 2 });
  const c = faultSchedule({ seed: SEED + 1, durationMs: 25_000, workers: 2 });
  t.deepEqual(a, b);
  t.notDeepEqual(a, c);
  t.deepEqual([...new Set(a.map((f) => f.kind))].sort(), [...FAULT_KINDS].sort());
});

test('when faults of every kind hit a running system, then it converges, conserves money and pays each order at most once', async (t) => {
  t.timeout(400_000);
  const report = await runChaos({
    orders: 300,
    durationSeconds: 25,
    seed: SEED,
    workers: 2,
    users: 40,
    concurrency: 24,
    convergenceTimeoutMs: 150_000,
    log: (line) => t.log(line),
  });
  t.log(
    JSON.stringify({ faults: report.faultsInjected, clients: report.clients, convergenceMs: report.convergenceMs, totals: report.totals }),
  );
  for (const violation of report.violations) t.log(`VIOLATION ${violation.check} ${violation.subject}: ${violation.detail}`);
  t.deepEqual(report.faultErrors, []);
  for (const kind of FAULT_KINDS) t.true((report.faultsInjected[kind] ?? 0) >= 1, `${kind} was injected`);
  t.deepEqual(report.violations, []);
  t.true(report.passed);
  t.not(report.convergenceMs, null);
});
