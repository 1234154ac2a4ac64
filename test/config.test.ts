import { spawnSync } from 'node:child_process';
import test from 'ava';
import { ConfigError, loadConfig } from '../app/config.ts';
import { projectRoot } from '../app/paths.ts';

const BASE = { BALANCE_DATABASE_URL: 'postgres://u:p@h/b', LEDGER_DATABASE_URL: 'postgres://u:p@h/l' };

test('when nothing is set, then every setting has its documented default and secrets are generated', (t) => {
  const config = loadConfig({});
  t.is(config.port, 3000);
  t.is(config.database.balanceUrl, undefined);
  t.is(config.psp.simPort, 4010);
  t.is(config.psp.callbackUrl, 'http://127.0.0.1:3000/withdraw/notify');
  t.true(config.auth.jwtSecretGenerated);
  t.true(config.auth.adminToken.length >= 32);
  t.not(loadConfig({}).auth.adminToken, config.auth.adminToken);
  t.true(Object.isFrozen(config) && Object.isFrozen(config.worker));
});

test('when a value is bad, then loading fails with a message naming each bad variable', (t) => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ PORT: 'eighty' }, /PORT/],
    [{ PORT: '70000' }, /PORT/],
    [{ BALANCE_DATABASE_URL: BASE.BALANCE_DATABASE_URL }, /LEDGER_DATABASE_URL.*both.*or neither/s],
    [{ ...BASE, LEDGER_DATABASE_URL: 'mysql://x/y' }, /LEDGER_DATABASE_URL/],
    [{ AUTH_JWT_SECRET: 'short' }, /AUTH_JWT_SECRET/],
    [{ ADMIN_TOKENS: 'alice' }, /ADMIN_TOKENS/],
    [{ ADMIN_TOKENS: 'admin:0123456789abcdefgh' }, /ADMIN_TOKENS.*reserved/s],
    [{ PSP_WEBHOOK_SECRET: 'long-enough-secret-1,short' }, /PSP_WEBHOOK_SECRET/],
    [{ GATEWAY_TIMEOUT_MS: '5' }, /GATEWAY_TIMEOUT_MS/],
    [{ LOG_LEVEL: 'loud', WORKER_CONCURRENCY: '0' }, /LOG_LEVEL[\s\S]*WORKER_CONCURRENCY/],
  ];
  for (const [env, message] of cases) {
    const error = t.throws(() => loadConfig(env), { instanceOf: ConfigError }, JSON.stringify(env));
    t.regex(error!.message, message);
  }
});

test('when named operators and rotated webhook secrets are given, then they are parsed', (t) => {
  const config = loadConfig({
    ADMIN_TOKENS: 'alice:0123456789abcdefgh,bob:hgfedcba9876543210',
    PSP_WEBHOOK_SECRET: 'new-secret-0123456,old-secret-0123456',
  });
  t.deepEqual([...config.auth.operatorTokens.keys()], ['alice', 'bob']);
  t.deepEqual(config.psp.webhookSecrets, ['new-secret-0123456', 'old-secret-0123456']);
});

test('when a process starts with a bad value, then it exits 1 with a message naming the variable', (t) => {
  const result = spawnSync(process.execPath, ['--import', 'tsx', 'app/web.ts'], {
    cwd: projectRoot,
    env: { ...process.env, ...BASE, PORT: 'not-a-port' },
    encoding: 'utf8',
    timeout: 30_000,
  });
  t.is(result.status, 1);
  t.regex(result.stderr, /invalid configuration:[\s\S]*PORT/);
});
