// The ledger verifier (reconcile/ledgerVerify.ts, `npm run ledger:verify`) against a real Ledger DB
// posted through ledger_post and then tampered with by a superuser, and the application's role
// (sql/ledger/0004_app_role.sql), which may append to the ledger but never change it.
import { spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import path from 'node:path';
import test from 'ava';
import type pg from 'pg';
import { sql, type DatabasePool } from 'slonik';
import { v5 as uuidv5 } from 'uuid';
import { z } from 'zod';
import { ConfigError, LEDGER_DB_ROLE_DEFAULT, loadConfig } from '../app/config.ts';
import { createDatabasePool, createDatabases, endDatabases } from '../app/db/pools.ts';
import { pruneRelayedOutbox } from '../jobs/pruning.ts';
import { projectRoot } from '../app/paths.ts';
import { verifyLedger, type LedgerVerification } from '../reconcile/ledgerVerify.ts';
import { createTestDatabases, type TestDatabases } from './helpers/testDatabases.ts';

// ---------------------------------------------------------------------------------------------
// a small ledger: three wallets in three currencies; deposits, holds, settles and a reverse, one
// ledger_post call each, so entries of different journals carry different created_at

const USD_USER = '0190a0d2-0000-7000-8000-000000000001';
const EUR_USER = '0190a0d2-0000-7000-8000-000000000002';
const JPY_USER = '0190a0d2-0000-7000-8000-000000000003';
const W_USD = `wallet:${USD_USER}`;
const W_EUR = `wallet:${EUR_USER}`;
const W_JPY = `wallet:${JPY_USER}`;

type Kind = 'deposit' | 'hold' | 'settle' | 'reverse';
const NAMESPACE = '5b7c1f2e-3d4a-4b6c-8e9f-0a1b2c3d4e5f';
const tx = (name: string) => uuidv5(name, NAMESPACE);

const SEED: ReadonlyArray<readonly [Kind, string, string, string, string]> = [
  ['deposit', 'd1', USD_USER, 'USD', '10000'],
  ['deposit', 'd2', EUR_USER, 'EUR', '5000'],
  ['deposit', 'd3', JPY_USER, 'JPY', '700'],
  ['hold', 'w1', USD_USER, 'USD', '2500'],
  ['settle', 'w1', USD_USER, 'USD', '2500'],
  ['hold', 'w2', USD_USER, 'USD', '1000'],
  ['reverse', 'w2', USD_USER, 'USD', '1000'],
  ['hold', 'w3', EUR_USER, 'EUR', '700'],
  ['deposit', 'd4', USD_USER, 'USD', '300'],
  ['settle', 'w3', EUR_USER, 'EUR', '700'],
  ['hold', 'w4', JPY_USER, 'JPY', '100'],
];
// 3 wallets + 3 platform accounts in each of 3 currencies; 11 journals of 2 entries
const ACCOUNTS = 12;
const JOURNALS = 11;

async function post(ledger: DatabasePool, kind: Kind, name: string, accountId: string, currency: string, amountMinor: string) {
  await ledger.any(sql.type(z.object({ posted: z.boolean() }))`
    select posted from ledger_post(${sql.jsonb([{ source: 'ledger-verify-test', transactionId: tx(name), kind, accountId, currency, amountMinor }])})`);
}

async function seededLedger(): Promise<TestDatabases> {
  const db = await createTestDatabases({ poolSizeMax: 2 });
  for (const [kind, name, accountId, currency, amount] of SEED) await post(db.databases.ledger, kind, name, accountId, currency, amount);
  return db;
}

/** Runs statements as the superuser with the append-only triggers of entries disabled. */
async function tamper(db: TestDatabases, statements: (client: pg.Client) => Promise<unknown>): Promise<void> {
  const client = await db.client('ledger');
  await client.query('alter table entries disable trigger user');
  try {
    await statements(client);
  } finally {
    await client.query('alter table entries enable trigger user');
  }
}

const ENTRY_ID = `(select e.id from entries e join ledger_accounts a on a.id = e.ledger_account_id
                    where a.code = $1 and e.account_sequence = $2)`;

const summary = (result: LedgerVerification) => result.breaks.map((b) => `${b.kind} ${b.accountCode ?? '-'} ${b.sequence ?? '-'}`).sort();

async function journalIdOf(client: pg.Client, name: string, kind: Kind): Promise<bigint> {
  const { rows } = await client.query<{ id: string }>('select id::text from journal_transactions where transaction_id = $1 and kind = $2', [
    tx(name),
    kind,
  ]);
  return BigInt(rows[0]?.id ?? '0');
}

async function withSeededLedger(fn: (db: TestDatabases) => Promise<void>): Promise<void> {
  const db = await seededLedger();
  try {
    await fn(db);
  } finally {
    await db.drop();
  }
}

// ---------------------------------------------------------------------------------------------
// verification

test('when the ledger was only ever posted through ledger_post, then it verifies clean, in any batch size', async (t) => {
  await withSeededLedger(async (db) => {
    for (const batchSizeMax of [1, 2, 5, 1_000]) {
      const result = await verifyLedger(db.databases.ledger, { batchSizeMax });
      t.deepEqual(result.breaks, [], `batch size ${batchSizeMax}`);
      t.like(result, { clean: true, breakCount: 0, accountsChecked: ACCOUNTS, entriesChecked: JOURNALS * 2, journalsChecked: JOURNALS });
    }
  });
});

test('when an amount is changed together with its running balance, then the hash, the next entry and the journal break', async (t) => {
  await withSeededLedger(async (db) => {
    await tamper(db, (c) =>
      c.query(
        `update entries set amount_minor = amount_minor + 100, current_balance_minor = current_balance_minor + 100 where id = ${ENTRY_ID}`,
        [W_USD, 2],
      ),
    );
    const result = await verifyLedger(db.databases.ledger);
    t.deepEqual(summary(result), [`hash ${W_USD} 2`, 'journal_unbalanced - -', `previous_balance ${W_USD} 3`].sort());
    const journal = result.breaks.find((b) => b.kind === 'journal_unbalanced');
    t.is(journal?.journalId, await journalIdOf(await db.client('ledger'), 'w1', 'hold'));
    t.is(journal?.found, 'USD 100');
    t.like(
      result.breaks.find((b) => b.kind === 'previous_balance'),
      { expected: '-7400', found: '-7500' },
    );
    t.false(result.clean);
  });
});

test('when a hash is overwritten, then that entry fails to recompute and the next one no longer links to it', async (t) => {
  await withSeededLedger(async (db) => {
    const forged = createHash('sha256').update('forged').digest();
    await tamper(db, (c) => c.query(`update entries set hash = $3 where id = ${ENTRY_ID}`, ['in_transit:USD', 2, forged]));
    const result = await verifyLedger(db.databases.ledger);
    t.deepEqual(summary(result), ['hash in_transit:USD 2', 'previous_hash in_transit:USD 3']);
    t.is(result.breaks.find((b) => b.kind === 'hash')?.found, forged.toString('hex'));
    t.is(result.breaks.find((b) => b.kind === 'previous_hash')?.found, result.breaks.find((b) => b.kind === 'hash')?.expected);
  });
});

test('when an entry in the middle of a chain is deleted, then the gap, the broken links and the one-legged journal are reported', async (t) => {
  await withSeededLedger(async (db) => {
    await tamper(db, (c) => c.query(`delete from entries where id = ${ENTRY_ID}`, [W_USD, 3]));
    const result = await verifyLedger(db.databases.ledger);
    t.deepEqual(
      summary(result),
      [
        'journal_entries_too_few - -',
        'journal_unbalanced - -',
        `previous_balance ${W_USD} 4`,
        `previous_hash ${W_USD} 4`,
        `sequence ${W_USD} 4`,
      ].sort(),
    );
    t.like(
      result.breaks.find((b) => b.kind === 'sequence'),
      { expected: '3', found: '4' },
    );
    const journalId = await journalIdOf(await db.client('ledger'), 'w2', 'hold');
    t.true(result.breaks.filter((b) => b.kind.startsWith('journal_')).every((b) => b.journalId === journalId));
    t.is(result.entriesChecked, JOURNALS * 2 - 1);
  });
});

test('when the last entry of an account is deleted, then the account projection no longer matches its chain', async (t) => {
  await withSeededLedger(async (db) => {
    await tamper(db, (c) => c.query(`delete from entries where id = ${ENTRY_ID}`, [W_JPY, 2]));
    const result = await verifyLedger(db.databases.ledger);
    t.deepEqual(
      summary(result),
      [
        `account_balance ${W_JPY} 1`,
        `account_entry_count ${W_JPY} 1`,
        `account_last_hash ${W_JPY} 1`,
        'journal_entries_too_few - -',
        'journal_unbalanced - -',
      ].sort(),
    );
    t.like(
      result.breaks.find((b) => b.kind === 'account_balance'),
      { expected: '-700', found: '-600' },
    );
  });
});

test('when the created_at of two entries are swapped, then neither hash recomputes', async (t) => {
  await withSeededLedger(async (db) => {
    await tamper(db, async (c) => {
      const { rows } = await c.query<{ id: string; at: string }>(
        `select e.id, (extract(epoch from e.created_at) * 1000000)::bigint::text as at from entries e join ledger_accounts a on a.id = e.ledger_account_id
          where a.code = $1 and e.account_sequence in (1, 2) order by e.account_sequence`,
        [W_EUR],
      );
      t.is(rows.length, 2);
      t.not(rows[0]?.at, rows[1]?.at, 'posted by two calls, so at two instants');
      await c.query(
        `update entries e set created_at = o.created_at from entries o
                      where (e.id, o.id) in (($1::bigint, $2::bigint), ($2::bigint, $1::bigint))`,
        [rows[0]?.id, rows[1]?.id],
      );
    });
    const result = await verifyLedger(db.databases.ledger);
    // and the second entry is now dated before the first: created_at goes back along the chain
    t.deepEqual(summary(result), [`created_at_order ${W_EUR} 2`, `hash ${W_EUR} 1`, `hash ${W_EUR} 2`]);
  });
});

test('when an entry is moved to another currency, then its account and its journal disagree with it', async (t) => {
  await withSeededLedger(async (db) => {
    await tamper(db, (c) => c.query(`update entries set currency = 'EUR' where id = ${ENTRY_ID}`, ['funding:USD', 2]));
    const result = await verifyLedger(db.databases.ledger);
    t.deepEqual(summary(result), ['currency funding:USD 2', 'hash funding:USD 2', 'journal_unbalanced - -']);
    t.is(result.breaks.find((b) => b.kind === 'journal_unbalanced')?.found, 'EUR 300, USD -300');
  });
});

test('when an account balance is changed without an entry, then the projection break names the account', async (t) => {
  await withSeededLedger(async (db) => {
    const client = await db.client('ledger');
    await client.query(`update ledger_accounts set balance_minor = balance_minor - 1 where code = 'provider_clearing:USD'`);
    const result = await verifyLedger(db.databases.ledger, { batchSizeMax: 3 });
    t.deepEqual(summary(result), ['account_balance provider_clearing:USD 1']);
  });
});

test('when there are more breaks than breaksMax, then all are counted and the first ones listed', async (t) => {
  await withSeededLedger(async (db) => {
    const client = await db.client('ledger');
    await client.query(`update ledger_accounts set balance_minor = balance_minor + 1, entry_count = entry_count + 1`);
    const result = await verifyLedger(db.databases.ledger, { breaksMax: 5 });
    t.is(result.breakCount, ACCOUNTS * 2);
    t.is(result.breaks.length, 5);
    t.false(result.clean);
  });
});

// ---------------------------------------------------------------------------------------------
// the CLI

function runCli(
  env: Record<string, string>,
  args: readonly string[] = [],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(projectRoot, 'reconcile/ledgerVerifyMain.ts'), ...args], {
      cwd: projectRoot,
      env: { ...process.env, LOG_LEVEL: 'silent', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('when the CLI verifies a clean ledger, then it exits 0; once tampered, it prints the break and exits 1', async (t) => {
  await withSeededLedger(async (db) => {
    const env = { BALANCE_DATABASE_URL: db.balanceUrl, LEDGER_DATABASE_URL: db.ledgerUrl };
    const clean = await runCli(env);
    t.is(clean.code, 0, clean.stderr);
    t.regex(
      clean.stdout,
      new RegExp(
        `${ACCOUNTS} accounts, ${JOURNALS * 2} entries, ${JOURNALS} journals, 0 checkpoints \\(closed through no day\\) checked in \\d+ ms: clean`,
      ),
    );

    const forged = createHash('sha256').update('forged').digest();
    await tamper(db, (c) => c.query(`update entries set hash = $3 where id = ${ENTRY_ID}`, [W_EUR, 1, forged]));
    const tampered = await runCli(env);
    t.is(tampered.code, 1, tampered.stderr);
    t.regex(
      tampered.stdout,
      new RegExp(
        `BREAK hash \\(account ${W_EUR}, sequence 1, entry \\d+, journal \\d+\\): expected [0-9a-f]{64}, found ${forged.toString('hex')}`,
      ),
    );
    t.regex(tampered.stdout, /: 2 break\(s\)$/m);

    const json = await runCli(env, ['--json']);
    t.is(json.code, 1);
    t.like(JSON.parse(json.stdout), { clean: false, breakCount: 2, accountsChecked: ACCOUNTS });
  });
});

test('when the CLI is given an unknown argument or cannot reach the database, then it exits 2', async (t) => {
  const usage = await runCli({ BALANCE_DATABASE_URL: 'postgres://x@127.0.0.1:1/x', LEDGER_DATABASE_URL: 'postgres://x@127.0.0.1:1/x' }, [
    '--bogus',
  ]);
  t.is(usage.code, 2);
  t.regex(usage.stderr, /unknown argument --bogus/);
  const unreachable = await runCli({
    BALANCE_DATABASE_URL: 'postgres://x@127.0.0.1:1/x',
    LEDGER_DATABASE_URL: 'postgres://x@127.0.0.1:1/x',
  });
  t.is(unreachable.code, 2);
  t.regex(unreachable.stderr, /could not read the Ledger DB/);
});

// ---------------------------------------------------------------------------------------------
// the application's role: append-only by privilege

function pgCode(error: unknown): string | undefined {
  const e = error as { code?: string; cause?: { code?: string } };
  return e.code ?? e.cause?.code;
}

async function appDatabases(db: TestDatabases) {
  // as app/web.ts and jobs/worker.ts create them
  const config = loadConfig({ BALANCE_DATABASE_URL: db.balanceUrl, LEDGER_DATABASE_URL: db.ledgerUrl });
  return createDatabases(db, {
    poolSizeMax: 2,
    statementTimeoutMs: 10_000,
    applicationName: 'withdraw-test-app',
    ledgerRole: config.database.ledgerRole,
  });
}

test('when the application creates its Ledger DB pool, then the pool runs as withdraw_ledger_writer', async (t) => {
  await withSeededLedger(async (db) => {
    const app = await appDatabases(db);
    try {
      const who = z.object({ currentUser: z.string(), sessionUser: z.string() });
      const ledger = await app.ledger.one(sql.type(who)`select current_user as "currentUser", session_user as "sessionUser"`);
      t.is(ledger.currentUser, LEDGER_DB_ROLE_DEFAULT);
      const balance = await app.balance.one(sql.type(who)`select current_user as "currentUser", session_user as "sessionUser"`);
      t.is(balance.currentUser, balance.sessionUser, 'the Balance DB pool keeps the login user');
      // the role survives connections going back to the pool and coming out again
      const seen = await Promise.all(
        Array.from({ length: 6 }, () => app.ledger.oneFirst(sql.type(z.object({ u: z.string() }))`select current_user as u`)),
      );
      t.deepEqual(new Set(seen), new Set([LEDGER_DB_ROLE_DEFAULT]));
    } finally {
      await endDatabases(app);
    }
  });
});

test('when a superuser has disabled the append-only triggers, then the application role still cannot update, delete or truncate entries, and posting still works', async (t) => {
  await withSeededLedger(async (db) => {
    const superuser = await db.client('ledger');
    const app = await appDatabases(db);
    try {
      await superuser.query('alter table entries disable trigger user');
      await superuser.query('alter table journal_transactions disable trigger user');
      const attempts = {
        update: sql.unsafe`update entries set amount_minor = amount_minor + 1 where account_sequence = 1`,
        delete: sql.unsafe`delete from entries where account_sequence = 1`,
        truncate: sql.unsafe`truncate entries`,
        'update journal': sql.unsafe`update journal_transactions set source = 'forged'`,
        'delete journal': sql.unsafe`delete from journal_transactions`,
        'enable trigger': sql.unsafe`alter table entries enable trigger user`,
      };
      for (const [label, statement] of Object.entries(attempts)) {
        const error = await t.throwsAsync(app.ledger.query(statement), undefined, label);
        t.is(pgCode(error), '42501', `${label}: ${error?.message}`);
        t.regex(error?.message ?? '', /permission denied|must be owner/, label);
      }
      await superuser.query('alter table entries enable trigger user');
      await superuser.query('alter table journal_transactions enable trigger user');

      await post(app.ledger, 'deposit', 'd5', EUR_USER, 'EUR', '900');
      await post(app.ledger, 'hold', 'w5', EUR_USER, 'EUR', '400');
      await post(app.ledger, 'reverse', 'w5', EUR_USER, 'EUR', '400');
      const { rows } = await superuser.query<{ n: number }>('select count(*)::int as n from entries');
      t.is(rows[0]?.n, (JOURNALS + 3) * 2);
      const result = await verifyLedger(app.ledger);
      t.true(result.clean, JSON.stringify(summary(result)));
    } finally {
      await endDatabases(app);
    }
  });
});

test('when relayed ledger outbox rows pass their retention, then the application role relays and prunes them', async (t) => {
  await withSeededLedger(async (db) => {
    const app = await appDatabases(db);
    try {
      const superuser = await db.client('ledger');
      const { rows } = await superuser.query<{ n: number }>('select count(*)::int as n from outbox where relayed_at is null');
      t.true((rows[0]?.n ?? 0) > 0, 'the seeded holds announced themselves');
      // what the relay does on the Ledger DB: claim FOR UPDATE SKIP LOCKED, then mark relayed
      const marked = await app.ledger.transaction(async (connection) => {
        const ids = await connection.anyFirst(sql.type(z.object({ id: z.bigint() }))`
          select id from outbox where relayed_at is null order by id for update skip locked`);
        await connection.query(
          sql.unsafe`update outbox set relayed_at = now() - interval '100 hours' where id = any(${sql.array(ids, 'int8')})`,
        );
        return ids.length;
      });
      t.is(marked, rows[0]?.n ?? -1);
      t.is(await pruneRelayedOutbox(app.ledger, 72, 100), marked);
    } finally {
      await endDatabases(app);
    }
  });
});

test('when the configured role does not exist, then the pool runs as the login user and says why', async (t) => {
  const db = await createTestDatabases({ poolSizeMax: 1, ledgerRole: null });
  const warnings: string[] = [];
  const pool = await createDatabasePool(db.ledgerUrl, {
    poolSizeMax: 1,
    statementTimeoutMs: 10_000,
    applicationName: 'withdraw-test',
    sessionRole: `no_such_role_${randomUUID().slice(0, 8)}`,
    warn: (message) => warnings.push(message),
  });
  try {
    const superuser = await db.client('ledger');
    const { rows } = await superuser.query<{ u: string }>('select current_user as u');
    const loginUser = rows[0]?.u ?? '(none)';
    t.is(await pool.oneFirst(sql.type(z.object({ u: z.string() }))`select current_user as u`), loginUser);
    t.is(await db.databases.ledger.oneFirst(sql.type(z.object({ u: z.string() }))`select current_user as u`), loginUser, 'ledgerRole null');
    t.is(warnings.length, 1);
    t.regex(warnings[0] ?? '', /does not exist/);
  } finally {
    await pool.end();
    await db.drop();
  }
});

test('when LEDGER_DB_ROLE is unset, empty or not a plain role name, then the config uses the default, none, or refuses', (t) => {
  t.is(loadConfig({}).database.ledgerRole, LEDGER_DB_ROLE_DEFAULT);
  t.is(loadConfig({ LEDGER_DB_ROLE: '' }).database.ledgerRole, null);
  t.is(loadConfig({ LEDGER_DB_ROLE: 'ledger_app' }).database.ledgerRole, 'ledger_app');
  for (const bad of ['Ledger', 'a b', 'x; drop table entries', 'r'.repeat(64)]) {
    t.throws(() => loadConfig({ LEDGER_DB_ROLE: bad }), { instanceOf: ConfigError }, bad);
  }
});
