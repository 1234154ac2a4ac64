// `npm run chaos -- [--orders N] [--duration S] [--seed X] [--workers K] [--users U] [--json]`
// Exits non-zero on any violation. The same seed gives the same fault schedule.
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
});
const text = JSON.stringify(report, (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value), 2);
process.stdout.write(`${text}\n`);
process.stderr.write(report.passed ? 'chaos: PASSED\n' : `chaos: FAILED with ${report.violations.length} violations\n`);
process.exit(report.passed ? 0 : 1);
