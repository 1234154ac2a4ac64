// `npm run chaos -- [--orders N] [--duration S] [--seed X] [--workers K] [--users U] [--keep] [--runs-dir DIR]`
// Exits non-zero on any violation, printing each with the order it concerns; a failing run keeps its
// folder (every process's log, the report, a copy of the data directory). The same seed gives the
// same fault schedule.
import { parseArgs } from 'node:util';
import { runChaos } from './chaosRun.ts';

const { values } = parseArgs({
  options: {
    orders: { type: 'string', default: '2000' },
    duration: { type: 'string', default: '60' },
    seed: { type: 'string', default: '1' },
    workers: { type: 'string', default: '2' },
    users: { type: 'string', default: '60' },
    concurrency: { type: 'string', default: '32' },
    json: { type: 'boolean', default: false },
    verbose: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    'runs-dir': { type: 'string' },
  },
});
const positive = (name: string, value: string | undefined) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    process.stderr.write(`--${name} must be a positive integer, got ${value}\n`);
    process.exit(2);
  }
  return n;
};

const report = await runChaos({
  orders: positive('orders', values.orders),
  durationSeconds: positive('duration', values.duration),
  seed: positive('seed', values.seed),
  workers: positive('workers', values.workers),
  users: positive('users', values.users),
  concurrency: positive('concurrency', values.concurrency),
  log: (line) => process.stderr.write(`${line}\n`),
  verbose: values.verbose,
  keep: values.keep,
  ...(values['runs-dir'] ? { runsDir: values['runs-dir'] } : {}),
});
// every violation with the order it concerns, before the whole report
for (const v of report.violations) {
  process.stderr.write(`VIOLATION ${v.check} ${v.subject}: ${v.detail}\n`);
  if (v.order) process.stderr.write(`  order: ${JSON.stringify(v.order)}\n`);
}
const text = JSON.stringify(report, (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value), 2);
process.stdout.write(`${text}\n`);
process.stderr.write(
  report.passed
    ? 'chaos: PASSED\n'
    : `chaos: FAILED with ${report.violations.length} violations; logs, report and the databases kept in ${report.keptIn}\n`,
);
process.exit(report.passed ? 0 : 1);
