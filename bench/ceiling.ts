// The ceiling: what this cluster does when a withdrawal's reservation is nothing but ONE prepared
// statement (the guarded update of the account), driven by pgbench (Debian's postgresql-client)
// with 64 clients; and, for comparison, an order placed as one statement (a CTE: the reservation,
// the order, its idempotency key and its outbox event). A database of its own, cloned from the
// migrated Balance DB, so the real tables, indexes and triggers pay.
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);

export const CEILING_ACCOUNTS = 200;

export const RESERVATION_SCRIPT = `\\set n random(1, ${CEILING_ACCOUNTS})
update accounts set available_minor = available_minor - 1, reserved_minor = reserved_minor + 1,
       version = version + 1, updated_at = now()
 where user_id = 'ceiling-' || :n and currency = 'USD' and status = 'active' and available_minor >= 1;
`;

export const PLACE_ORDER_SCRIPT = `\\set n random(1, ${CEILING_ACCOUNTS})
with a as (
  update accounts set available_minor = available_minor - 1, reserved_minor = reserved_minor + 1,
         version = version + 1, updated_at = now()
   where user_id = 'ceiling-' || :n and currency = 'USD' and status = 'active' and available_minor >= 1
  returning id, user_id
), o as (
  insert into withdraw_orders (id, transaction_id, user_id, account_id, to_account_id, amount_minor, currency, status)
  select uuidv7(), uuidv7(), a.user_id, a.id, 'ceiling-bank', 1, 'USD', 'init' from a
  returning id, transaction_id, user_id
), k as (
  insert into idempotency_keys (user_id, idempotency_key, request_hash, order_id, response_status, response_body)
  select o.user_id, uuidv7(), 'ceiling', o.id, 202, '{}'::json from o
  returning 1
)
insert into outbox (topic, transaction_id, payload) select 'withdraw.created', o.transaction_id, '{}'::jsonb from o;
`;

export async function pgbenchVersion(): Promise<string | null> {
  try {
    const { stdout } = await run('pgbench', ['--version']);
    return stdout.trim();
  } catch {
    return null;
  }
}

/** A copy of the (migrated, still empty) Balance DB with funded accounts, for the ceiling run. */
export async function prepareCeilingDatabase(adminUrl: string, template: string, name: string): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl, application_name: 'withdraw-bench' });
  await admin.connect();
  try {
    await admin.query(`create database ${admin.escapeIdentifier(name)} template ${admin.escapeIdentifier(template)}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const client = new pg.Client({ connectionString: url.toString(), application_name: 'withdraw-bench' });
  await client.connect();
  try {
    await client.query(
      `insert into accounts (user_id, currency, balance_minor, available_minor)
       select 'ceiling-' || n, 'USD', 1000000000000, 1000000000000 from generate_series(1, $1::int) n`,
      [CEILING_ACCOUNTS],
    );
    await client.query('vacuum analyze');
  } finally {
    await client.end();
  }
}

export type CeilingRun = Readonly<{ tps: number; transactions: number; clients: number; durationS: number; latencyAvgMs: number }>;

export async function runPgbench(options: {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  clients: number;
  durationS: number;
  script: string;
}): Promise<CeilingRun> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'withdraw-ceiling-'));
  const script = path.join(dir, 'ceiling.sql');
  await writeFile(script, options.script);
  const { stdout } = await run(
    'pgbench',
    [
      '--no-vacuum',
      '--protocol=prepared',
      `--client=${options.clients}`,
      `--jobs=${Math.min(options.clients, os.cpus().length)}`,
      `--time=${options.durationS}`,
      `--file=${script}`,
      `--host=${options.host}`,
      `--port=${options.port}`,
      `--username=${options.user}`,
      options.database,
    ],
    { env: { ...minimalEnv(), PGPASSWORD: options.password }, maxBuffer: 16 * 1024 * 1024 },
  );
  const tps = Number(/tps = ([\d.]+) \(without initial connection time\)/.exec(stdout)?.[1]);
  const transactions = Number(/number of transactions actually processed: (\d+)/.exec(stdout)?.[1]);
  const latencyAvgMs = Number(/latency average = ([\d.]+) ms/.exec(stdout)?.[1]);
  const failed = Number(/number of failed transactions: (\d+)/.exec(stdout)?.[1] ?? 0);
  if (!Number.isFinite(tps) || !Number.isFinite(transactions) || failed > 0) throw new Error(`pgbench: unexpected output:\n${stdout}`);
  return { tps, transactions, clients: options.clients, durationS: options.durationS, latencyAvgMs };
}

function minimalEnv(): Record<string, string> {
  return { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C' };
}
