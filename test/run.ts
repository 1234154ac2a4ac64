// `npm test`: one PostgreSQL cluster for the whole run (embedded unless database URLs are set),
// two migrated template databases, then ava. Each test file clones fresh databases from the
// templates (~85 ms), so files never share state.
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import pg from 'pg';
import { ensureDatabase, startEmbeddedCluster, temporaryDataDir, type EmbeddedCluster } from '../app/db/embeddedPostgres.ts';
import { migrateAll } from '../app/db/migrate.ts';
import { projectRoot } from '../app/paths.ts';

const TEMPLATE_BALANCE = `wtest_balance_tpl_${process.pid}`;
const TEMPLATE_LEDGER = `wtest_ledger_tpl_${process.pid}`;

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

function adminUrlFrom(url: string): string {
  const parsed = new URL(url);
  parsed.pathname = '/postgres';
  return parsed.toString();
}

async function dropTemplates(adminUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    for (const name of [TEMPLATE_BALANCE, TEMPLATE_LEDGER]) {
      await client.query(`drop database if exists ${client.escapeIdentifier(name)} with (force)`);
    }
  } finally {
    await client.end();
  }
}

async function main(): Promise<number> {
  let cluster: EmbeddedCluster | null = null;
  let adminUrl: string;
  const externalUrl = process.env.BALANCE_DATABASE_URL;
  const started = Date.now();
  if (externalUrl) {
    adminUrl = adminUrlFrom(externalUrl);
  } else {
    cluster = await startEmbeddedCluster({
      dataDir: await temporaryDataDir('withdraw-test-'),
      port: await freePort(),
      persistent: false,
      durable: false,
      maxConnections: 500,
      log: (line) => {
        if (/FATAL|PANIC/.test(line) && !/terminating connection due to administrator command/.test(line))
          process.stderr.write(`postgres: ${line}\n`);
      },
    });
    adminUrl = cluster.url('postgres');
  }
  const templateUrl = (name: string) => {
    const parsed = new URL(adminUrl);
    parsed.pathname = `/${name}`;
    return parsed.toString();
  };
  await ensureDatabase(adminUrl, TEMPLATE_BALANCE);
  await ensureDatabase(adminUrl, TEMPLATE_LEDGER);
  await migrateAll({ balanceUrl: templateUrl(TEMPLATE_BALANCE), ledgerUrl: templateUrl(TEMPLATE_LEDGER) });
  process.stderr.write(
    `test databases ready in ${Date.now() - started} ms (${cluster ? 'embedded PostgreSQL' : 'BALANCE_DATABASE_URL server'})\n`,
  );

  const ava = path.join(projectRoot, 'node_modules', 'ava', 'entrypoints', 'cli.mjs');
  const code = await new Promise<number>((resolve) => {
    const child = spawn(process.execPath, [ava, ...process.argv.slice(2)], {
      cwd: projectRoot,
      stdio: 'inherit',
      env: {
        ...process.env,
        NODE_ENV: 'test',
        TEST_PG_ADMIN_URL: adminUrl,
        TEST_BALANCE_TEMPLATE: TEMPLATE_BALANCE,
        TEST_LEDGER_TEMPLATE: TEMPLATE_LEDGER,
      },
    });
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    child.on('exit', (exitCode, signal) => resolve(exitCode ?? (signal ? 1 : 0)));
  });
  if (cluster) await cluster.stop();
  else await dropTemplates(adminUrl);
  return code;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`test setup failed: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);
