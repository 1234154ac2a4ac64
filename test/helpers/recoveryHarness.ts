// What the recovery, reconciliation and convergence tests share: a Config with small recovery
// thresholds (the worker of the test system keeps the defaults), a clock ahead of the real one
// for the recovery runs the tests make themselves, and the ledger trial balance.
import net from 'node:net';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import type { Config } from '../../app/config.ts';
import { FAST_ASYNC_ENV, testConfig, type TestSystem } from './system.ts';

export const RECOVERY_ENV: Readonly<Record<string, string>> = {
  INIT_STALE_MS: '1000',
  PROCESSING_STALE_MS: '1000',
  PROCESSING_QUERY_INTERVAL_MS: '100',
  PROCESSING_QUERY_ATTEMPTS_MAX: '3',
  RECONCILE_SETTLE_MS: '0',
};

/** The system's configuration with small recovery thresholds, for calling recovery and reconciliation directly. */
export function recoveryConfig(system: TestSystem, extra: Record<string, string> = {}): Config {
  return testConfig(system.db, { ...FAST_ASYNC_ENV, ...(system.simUrl ? { PSP_BASE_URL: system.simUrl } : {}), ...RECOVERY_ENV, ...extra });
}

export type TestClock = Readonly<{
  /** the clock's time now: never behind where it was, and at least `aheadMs` ahead of the real clock */
  now: () => Date;
  /** moves the clock forward by `ms` and returns the new time */
  advance: (ms: number) => Date;
}>;

/**
 * The time recovery and reconciliation runs are given instead of waiting: it starts `aheadMs`
 * ahead of the real clock (so every order the test made is as stale as any threshold it sets) and
 * only moves forward, so the runs' own records (status queries) are in its past.
 */
export function testClock(aheadMs = 10 * 60_000): TestClock {
  let at = Date.now() + aheadMs;
  const now = () => {
    at = Math.max(at, Date.now() + aheadMs);
    return new Date(at);
  };
  return {
    now,
    advance: (ms) => {
      at = now().getTime() + ms;
      return new Date(at);
    },
  };
}

/** Sum of all ledger entries per currency: zero for each when every journal balances. */
export async function trialBalance(ledger: DatabasePool): Promise<Map<string, bigint>> {
  const rows = await ledger.any(sql.type(z.object({ currency: z.string(), total: z.bigint(), entries: z.number() }))`
    select currency, sum(amount_minor)::bigint as total, count(*)::int as entries from entries group by currency order by currency`);
  return new Map(rows.map((row) => [row.currency, row.total]));
}

/** A TCP port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
