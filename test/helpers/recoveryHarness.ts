// What the recovery, reconciliation and convergence tests share: a Config with small recovery
// thresholds (the worker of the test system keeps the defaults, so its once-a-minute crons never
// race the test's own calls), waiting for orders to become stale, and the ledger trial balance.
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

/** Polls until every order was last updated more than `ageMs` ago (by the database's clock). */
export async function waitUntilStale(balance: DatabasePool, orderIds: readonly string[], ageMs: number, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const fresh = await balance.oneFirst(sql.type(z.object({ n: z.number() }))`
      select count(*)::int as n from withdraw_orders
       where id = any(${sql.array([...orderIds], 'uuid')}) and updated_at >= now() - make_interval(secs => ${ageMs / 1000})`);
    if (fresh === 0) return;
    if (Date.now() > deadline) throw new Error(`${fresh} orders still fresh after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
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
